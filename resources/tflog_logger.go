package resources

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
)

var _ replicate.Logger = tflogLogger{}

// tflogLogger routes the replication client's leveled log lines (including
// go-retryablehttp's) to tflog, so TF_LOG shows retries and requests.
type tflogLogger struct {
	ctx context.Context
}

// withClientLogging returns ctx with the secrets of opts masked in every log
// line, and opts with a logger writing to that context.
func withClientLogging(ctx context.Context, opts replicate.ClientOptions) (context.Context, replicate.ClientOptions) {
	var secrets []string
	if opts.Token != "" {
		secrets = append(secrets, opts.Token)
	}
	if opts.ClientKeyPEM != "" {
		secrets = append(secrets, opts.ClientKeyPEM)
	}
	for _, v := range opts.Headers {
		if v != "" {
			secrets = append(secrets, v)
		}
	}
	if len(secrets) > 0 {
		ctx = tflog.MaskMessageStrings(ctx, secrets...)
		ctx = tflog.MaskAllFieldValuesStrings(ctx, secrets...)
	}
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "Authorization", "authorization", "token")
	opts.Logger = tflogLogger{ctx: ctx}
	return ctx, opts
}

func (l tflogLogger) Error(msg string, kv ...interface{}) { tflog.Error(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Warn(msg string, kv ...interface{})  { tflog.Warn(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Info(msg string, kv ...interface{})  { tflog.Info(l.ctx, msg, fields(kv)) }
func (l tflogLogger) Debug(msg string, kv ...interface{}) { tflog.Debug(l.ctx, msg, fields(kv)) }

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
