package split_test

import "github.com/valyala/fasthttp"

// ctxRequest reads a fasthttp request for the splitter (reqkey.Request),
// as the gateway's request view does.
type ctxRequest struct{ rc *fasthttp.RequestCtx }

func (r ctxRequest) Header(name []byte) []byte { return r.rc.Request.Header.PeekBytes(name) }
func (r ctxRequest) Cookie(name []byte) []byte { return r.rc.Request.Header.CookieBytes(name) }

func (r ctxRequest) ClientIP() []byte {
	ip := r.rc.RemoteIP()
	if len(ip) == 0 || ip.IsUnspecified() {
		return nil
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}
