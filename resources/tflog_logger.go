package resources

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/replicate/wire"
	"github.com/zonegit/terraform-provider-zonegit/secondary"
)

var _ wire.Logger = tflogLogger{}

// tflogLogger routes the replication client's leveled log lines (including
// go-retryablehttp's) to tflog, so TF_LOG shows retries and requests.
//
// go-retryablehttp logs "performing request" at debug level for every
// request. Against a v0 primary (no batch or pack extension) a pull is one
// GET /v0/objects/<hash> per object, so a large zone would bury everything
// else in the debug log under one such line per object. The logger shows
// the first objectLinesShown of them and counts the rest, and
// logRequestSummary then says, once per operation, how many were not shown.
type tflogLogger struct {
	ctx     context.Context
	objects *atomic.Int64 // per-object GETs seen
}

// objectLinesShown is how many per-object request lines are logged one by one.
const objectLinesShown = 5

// withClientLogging returns ctx with the secrets of opts masked in every log
// line, and opts with a logger writing to that context.
func withClientLogging(ctx context.Context, opts replicate.ClientOptions) (context.Context, replicate.ClientOptions) {
	secrets := []string{opts.Token, opts.ClientKeyPEM}
	for _, v := range opts.Headers {
		secrets = append(secrets, v)
	}
	ctx, opts.Logger = maskedLogger(ctx, secrets...)
	return ctx, opts
}

// withControlLogging is withClientLogging for a secondary daemon's control
// client: the same masking and the same logger, so TF_LOG shows control
// requests and their retries as it shows a primary's.
func withControlLogging(ctx context.Context, opts secondary.ControlOptions) (context.Context, secondary.ControlOptions) {
	ctx, opts.Logger = maskedLogger(ctx, opts.Token, opts.ClientKeyPEM)
	return ctx, opts
}

// maskedLogger returns ctx with the non-empty secrets (and authorization
// fields) masked in every log line, and a logger writing to it.
func maskedLogger(ctx context.Context, secrets ...string) (context.Context, tflogLogger) {
	var mask []string
	for _, s := range secrets {
		if s != "" {
			mask = append(mask, s)
		}
	}
	if len(mask) > 0 {
		ctx = tflog.MaskMessageStrings(ctx, mask...)
		ctx = tflog.MaskAllFieldValuesStrings(ctx, mask...)
	}
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "Authorization", "authorization", "token")
	return ctx, tflogLogger{ctx: ctx, objects: new(atomic.Int64)}
}

// logRequestSummary logs how many per-object request lines the client's
// logger left out, if any (opts as withClientLogging returned them).
func logRequestSummary(opts replicate.ClientOptions) {
	l, ok := opts.Logger.(tflogLogger)
	if !ok || l.objects == nil {
		return
	}
	if n := l.objects.Load(); n > objectLinesShown {
		tflog.Debug(l.ctx, "per-object requests (v0 primary)", map[string]any{
			"requests": n, "logged": objectLinesShown, "not_logged": n - objectLinesShown,
		})
	}
}

// isObjectRequest reports whether a go-retryablehttp "performing request"
// line is a GET of one object.
func isObjectRequest(msg string, kv []interface{}) bool {
	if msg != "performing request" {
		return false
	}
	f := fields(kv)
	method, _ := f["method"].(string)
	url, _ := f["url"].(string)
	return method == "GET" && strings.Contains(url, replicate.BasePath+"/objects/")
}

func (l tflogLogger) Error(msg string, kv ...interface{}) { tflog.Error(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Warn(msg string, kv ...interface{})  { tflog.Warn(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Info(msg string, kv ...interface{})  { tflog.Info(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Debug(msg string, kv ...interface{}) {
	if l.objects != nil && isObjectRequest(msg, kv) {
		switch n := l.objects.Add(1); {
		case n > objectLinesShown:
			return
		case n == objectLinesShown:
			f := fields(kv)
			f["note"] = "further per-object requests are counted, not logged"
			tflog.Debug(l.ctx, msg, f)
			return
		}
	}
	tflog.Debug(l.ctx, msg, fields(kv))
}

// fields turns alternating keys and values into tflog's field map. A value
// without a key, or a key that is not a string, is kept under a positional name.
func fields(kv []interface{}) map[string]interface{} {
	if len(kv) == 0 {
		return nil
	}
	out := make(map[string]interface{}, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprintf("arg%d", i)
		}
		if i+1 < len(kv) {
			out[key] = kv[i+1]
		} else {
			out[key] = "(missing value)"
		}
	}
	return out
}
