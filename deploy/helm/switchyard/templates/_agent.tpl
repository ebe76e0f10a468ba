{{/*
The agent container beside an engine. Call with (dict "ctx" $ "e" $engine).
It heartbeats the pod to the Resource tier with the engine's load and
drains it on the control port; the engine's PreStop hook
(switchyard.engine.preStop) asks it to.
*/}}
{{- define "switchyard.agent.container" -}}
{{- $ := .ctx -}}{{- $e := .e -}}
{{- $a := $.Values.agent -}}
- name: switchyard-agent
  image: {{ include "switchyard.image" $ }}
  imagePullPolicy: {{ $.Values.image.pullPolicy }}
  {{- if $a.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - agent
    - --servers={{ include "switchyard.resource.servers" $ }}
    - --app={{ $e.app | default $e.name }}
    - --id=$(POD_NAME)
    - --addr=http=$(POD_IP):{{ $e.port }}
    - --engine={{ $e.engine }}
    - --load=probe
    - --util-from=kv-cache
    - --metrics-url=http://127.0.0.1:{{ $e.port }}/metrics
    {{- if $e.accelerator }}
    - --accel-model={{ $e.accelerator }}
    {{- end }}
    {{- if $e.cards }}
    - --accel-count={{ $e.cards }}
    {{- end }}
    - --control=127.0.0.1:{{ $a.controlPort }}
    - --drain-timeout={{ $a.drainSeconds }}s
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    {{- include "switchyard.tokenEnv" $ | nindent 4 }}
  resources:
    {{- toYaml $a.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    {{- include "switchyard.securityContext" $ | nindent 4 }}
{{- end -}}

{{/* The engine container's PreStop hook. Call with the root context. */}}
{{- define "switchyard.engine.preStop" -}}
{{- $a := .Values.agent -}}
{{- if eq $a.drainHook "sleep" -}}
sleep: {seconds: {{ $a.drainSeconds }}}
{{- else -}}
exec:
  # Blocks until every gateway has acknowledged that this pod is no longer
  # a target (exit 0), or drainSeconds passed (exit 1); then SIGTERM.
  command:
    - {{ if eq $a.drainHook "imageVolume" }}/opt/switchyard/switchyard{{ else }}{{ $a.binaryPath }}{{ end }}
    - agent
    - drain
    - --control=127.0.0.1:{{ $a.controlPort }}
    - --timeout={{ $a.drainSeconds }}s
{{- end -}}
{{- end -}}
