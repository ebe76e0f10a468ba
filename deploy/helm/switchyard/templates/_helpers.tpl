{{/* Names. */}}
{{- define "switchyard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.gateway.name" -}}{{ include "switchyard.fullname" . | trunc 55 | trimSuffix "-" }}-gateway{{- end -}}
{{- define "switchyard.resource.name" -}}{{ include "switchyard.fullname" . | trunc 54 | trimSuffix "-" }}-resource{{- end -}}
{{- define "switchyard.resource.headless" -}}{{ include "switchyard.resource.name" . }}-peers{{- end -}}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels. Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchyard.labels" -}}
{{ include "switchyard.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- end -}}

{{- define "switchyard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The token Secret as an env var named SWITCHYARD_TOKEN (the flags' default). */}}
{{- define "switchyard.tokenEnv" -}}
{{- if .Values.token.existingSecret }}
- name: SWITCHYARD_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.token.existingSecret }}
      key: {{ .Values.token.key }}
{{- end }}
{{- end -}}

{{/* The Resource instances, as host:port, in order. */}}
{{- define "switchyard.resource.servers" -}}
{{- $servers := list -}}
{{- range $i := until (int .Values.resource.replicas) -}}
{{- $servers = append $servers (printf "%s-%d.%s.%s.svc:%d" (include "switchyard.resource.name" $) $i (include "switchyard.resource.headless" $) $.Release.Namespace (int $.Values.resource.port)) -}}
{{- end -}}
{{- join "," $servers -}}
{{- end -}}

{{/*
The namespaces Kubernetes discovery reads: the config's namespace (default
the release's) and every app's namespaces, sorted, without duplicates.
*/}}
{{- define "switchyard.kubernetes.namespaces" -}}
{{- $cfg := .Values.gateway.kubernetes.config | default dict -}}
{{- $default := $cfg.namespace | default .Release.Namespace -}}
{{- $ns := list -}}
{{- range $app := $cfg.apps | default list -}}
{{- range $n := $app.namespaces | default (list $default) -}}
{{- $ns = append $ns $n -}}
{{- end -}}
{{- end -}}
{{- if not $ns }}{{ $ns = list $default }}{{ end -}}
{{- $ns | uniq | sortAlpha | join "," -}}
{{- end -}}

{{/*
The RBAC rules of Kubernetes discovery: get/list/watch on what its apps
read, nothing else. Pods always (readiness, IPs, capacity annotations);
EndpointSlices for apps that name a service; InferencePools for apps that
name an inference_pool.
*/}}
{{- define "switchyard.kubernetes.rules" -}}
{{- $cfg := .Values.gateway.kubernetes.config | default dict -}}
{{- $slices := false -}}{{- $pools := false -}}
{{- range $app := $cfg.apps | default list -}}
{{- if $app.service }}{{ $slices = true }}{{ end -}}
{{- if $app.inference_pool }}{{ $pools = true }}{{ end -}}
{{- end }}
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
{{- if $slices }}
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
{{- end }}
{{- if $pools }}
- apiGroups: [inference.networking.k8s.io]
  resources: [inferencepools]
  verbs: [get, list, watch]
{{- end }}
{{- end -}}

{{/* The gateway's YAML config. */}}
{{- define "switchyard.gateway.config" -}}
{{- $cfg := deepCopy (.Values.gateway.config | default dict) -}}
{{- $listen := deepCopy (get $cfg "listen" | default dict) -}}
{{- $_ := set $listen "client" (printf "0.0.0.0:%d" (int .Values.gateway.ports.client)) -}}
{{- $_ := set $listen "admin" (printf "0.0.0.0:%d" (int .Values.gateway.ports.admin)) -}}
{{- if .Values.gateway.tls.existingSecret -}}
{{- $_ := set $listen "tls_cert" "/etc/switchyard/tls/tls.crt" -}}
{{- $_ := set $listen "tls_key" "/etc/switchyard/tls/tls.key" -}}
{{- end -}}
{{- $_ := set $cfg "listen" $listen -}}
{{- if and .Values.resource.enabled (not (hasKey $cfg "discovery")) -}}
{{- $d := dict "servers" (splitList "," (include "switchyard.resource.servers" .)) -}}
{{- if .Values.token.existingSecret -}}
{{- $_ := set $d "token_file" "/etc/switchyard/token/token" -}}
{{- end -}}
{{- $_ := set $cfg "discovery" $d -}}
{{- end -}}
{{- if .Values.gateway.kubernetes.enabled -}}
{{- $k := deepCopy (.Values.gateway.kubernetes.config | default dict) -}}
{{- if not $k.namespace }}{{ $_ := set $k "namespace" .Release.Namespace }}{{ end -}}
{{- $_ := set $cfg "kubernetes" $k -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Security contexts. */}}
{{- define "switchyard.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}
{{- define "switchyard.securityContext" -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}
