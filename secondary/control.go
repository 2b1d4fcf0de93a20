package secondary

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/zonegit/terraform-provider-zonegit/replicate"
	"github.com/zonegit/terraform-provider-zonegit/repo"
)

// maxControlBody bounds a control request's body: a desired state with
// thousands of pins is far below it.
const maxControlBody = 1 << 20

// httpError is a control answer other than 2xx.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// controlHandler serves the control API: authentication first (so an
// unauthenticated client learns nothing, not even which paths exist),
// then the route, the method and the body.
func (d *Daemon) controlHandler() http.Handler {
	type route struct {
		method string
		fn     func(r *http.Request) (int, any, *httpError)
	}
	routes := map[string][]route{
		"/status": {{http.MethodGet, d.handleStatus}},
		"/plan":   {{http.MethodPost, d.handlePlan}},
		"/desired": {
			{http.MethodPut, d.handleApply},
			{http.MethodDelete, d.handleClear},
		},
		"/offer": {{http.MethodGet, d.handleOffer}},
		"/pulls": {{http.MethodGet, d.handlePulls}},
	}
	want := []byte("Bearer " + d.cfg.ControlToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zonegit secondary control"`)
			msg := "missing control token: send Authorization: Bearer <control token>"
			if len(got) > 0 {
				msg = "wrong control token"
			}
			writeError(w, &httpError{http.StatusUnauthorized, msg})
			return
		}
		rs, ok := routes[strings.TrimPrefix(r.URL.Path, ControlPath)]
		if !ok {
			writeError(w, errorf(http.StatusNotFound, "no control endpoint %s", replicate.DisplayName(r.URL.Path)))
			return
		}
		var allowed []string
		for _, rt := range rs {
			allowed = append(allowed, rt.method)
			if rt.method != r.Method {
				continue
			}
			if !d.enter() {
				writeError(w, errorf(http.StatusServiceUnavailable, "secondary daemon is shutting down"))
				return
			}
			status, body, herr := rt.fn(r)
			d.leave()
			if herr != nil {
				writeError(w, herr)
				return
			}
			writeJSON(w, status, body)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)",
			replicate.DisplayName(r.Method), r.URL.Path, strings.Join(allowed, ", ")))
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, "encoding the answer: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client is gone if this fails
}

func writeError(w http.ResponseWriter, e *httpError) {
	b, _ := json.Marshal(map[string]string{"error": e.msg}) // a map of strings always encodes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads a JSON body strictly: at most maxControlBody bytes,
// no unknown fields, nothing after the value.
func decodeBody(r *http.Request, v any) *httpError {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxControlBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxControlBody)
		}
		return errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	if err := decodeStrict(b, v); err != nil {
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields and
// nothing but white space after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if len(bytes.TrimSpace(b)) == 0 {
			return errors.New("empty")
		}
		return err
	}
	// More() is false before a stray '}' or ']', so look for any token.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkDesired validates a desired state against the rules and against
// this daemon's configuration.
func (d *Daemon) checkDesired(ds *Desired) *httpError {
	if err := ds.Validate(); err != nil {
		return errorf(http.StatusBadRequest, "invalid desired state: %v", err)
	}
	if ds.Follow && d.cfg.Follow <= 0 {
		return errorf(http.StatusConflict, "follow = true, but this daemon was started without --follow: it cannot follow its primary; restart it with --follow DURATION, or set follow = false")
	}
	return nil
}

func (d *Daemon) handleStatus(*http.Request) (int, any, *httpError) {
	st, err := d.status()
	if err != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "%v", err)
	}
	return http.StatusOK, st, nil
}

func (d *Daemon) handlePulls(*http.Request) (int, any, *httpError) {
	return http.StatusOK, d.Pulls(), nil
}

func (d *Daemon) handleOffer(r *http.Request) (int, any, *httpError) {
	info, err := d.client.RefsInfo(r.Context())
	if err != nil {
		return 0, nil, d.primaryError(err)
	}
	return http.StatusOK, info.Refs, nil
}

// primaryError is 502 naming the primary.
func (d *Daemon) primaryError(err error) *httpError {
	return errorf(http.StatusBadGateway, "primary %s: %v", d.client.PrimaryURL, err)
}

func (d *Daemon) handlePlan(r *http.Request) (int, any, *httpError) {
	var ds Desired
	if herr := decodeBody(r, &ds); herr != nil {
		return 0, nil, herr
	}
	if herr := d.checkDesired(&ds); herr != nil {
		return 0, nil, herr
	}
	p, herr := d.plan(r.Context(), &ds)
	if herr != nil {
		return 0, nil, herr
	}
	return http.StatusOK, &Plan{Primary: d.client.PrimaryURL, Current: p.Current, Refs: p.Refs}, nil
}

// plan is zonegit_replica's plan (replicate's PlanRefs) of ds against the
// primary's refs now.
func (d *Daemon) plan(ctx context.Context, ds *Desired) (*replicate.RefsPlan, *httpError) {
	info, err := d.client.RefsInfo(ctx)
	if err != nil {
		return nil, d.primaryError(err)
	}
	primary := info.Refs
	local, err := d.local.Branches("")
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "listing the replica's branches: %v", err)
	}
	p, err := d.client.PlanRefs(ctx, primary, local, ds.pullOptions())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid desired state: %v", err)
	}
	if len(p.Invalid) > 0 {
		var msgs []string
		for _, e := range p.Invalid {
			msgs = append(msgs, e.Error())
		}
		return nil, errorf(http.StatusBadGateway, "primary %s offers refs the replica cannot store (fix them on the primary, or leave them out of zones and branches): %s",
			d.client.PrimaryURL, strings.Join(msgs, "; "))
	}
	for _, e := range p.Pins {
		if errors.Is(e.Err, repo.ErrNotFound) {
			return nil, errorf(http.StatusUnprocessableEntity, "pin %q = %s: primary %s does not have that commit", e.Key, e.Hash, d.client.PrimaryURL)
		}
	}
	if len(p.Pins) > 0 {
		e := p.Pins[0]
		return nil, errorf(http.StatusBadGateway, "pin %q = %s: asking primary %s for the commit failed: %v", e.Key, e.Hash, d.client.PrimaryURL, e.Err)
	}
	return p, nil
}

// lockFor takes the pull lock for a request that changes the state: it
// waits while a pull runs (503 if the request ends first), and the context
// it returns ends with the request or with Close, so Close aborts the
// request's pull too. done releases both.
func (d *Daemon) lockFor(r *http.Request) (ctx context.Context, done func(), herr *httpError) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(d.ctx, cancel)
	if err := d.lock(ctx); err != nil {
		stop()
		cancel()
		return nil, nil, errorf(http.StatusServiceUnavailable, "secondary busy: a pull is running and the request ended before it finished (%v)", err)
	}
	return ctx, func() { d.unlock(); stop(); cancel() }, nil
}

func (d *Daemon) handleApply(r *http.Request) (int, any, *httpError) {
	var req ApplyRequest
	if herr := decodeBody(r, &req); herr != nil {
		return 0, nil, herr
	}
	ds := &req.Desired
	if herr := d.checkDesired(ds); herr != nil {
		return 0, nil, herr
	}
	for _, k := range slices.Sorted(maps.Keys(req.Expect)) {
		if err := replicate.ValidatePin(k, req.Expect[k]); err != nil {
			return 0, nil, errorf(http.StatusBadRequest, "expect: %v", err)
		}
	}
	ctx, done, herr := d.lockFor(r)
	if herr != nil {
		return 0, nil, herr
	}
	defer done()
	// The desired state is written (not yet in place) before anything is
	// pulled: a state file that cannot be written fails the request with
	// the refs untouched.
	ps, herr := d.prepareDesired(ds)
	if herr != nil {
		return 0, nil, herr
	}
	defer ps.abort()

	expect := req.Expect
	if expect == nil {
		// No plan to hold to: plan now, as zonegit_replica's apply does
		// when its plan could not know the refs.
		p, herr := d.plan(ctx, ds)
		if herr != nil {
			return 0, nil, herr
		}
		expect = p.Refs
	}
	// The plan decided everything, as in zonegit_replica's apply.
	res, rep, err := d.pull(ctx, TriggerApply, ds.pullOptions().Exactly(expect), expect)
	if ctx.Err() != nil {
		// Cut short by the client or by shutdown: refs are at complete
		// closures, but the desired state is not taken.
		return 0, nil, errorf(http.StatusServiceUnavailable, "the pull was interrupted (%v); %d refs had moved; the desired state is unchanged", context.Cause(ctx), len(rep.Moved))
	}
	var pe *replicate.PullError
	if err != nil && !errors.As(err, &pe) && (res == nil || len(res.Branches) == 0) {
		// Nothing was tried (the primary's refs could not be read): the
		// desired state stays as it was.
		return 0, nil, d.primaryError(err)
	}
	if err := d.storeDesired(ps, ds.clone()); err != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "the pull ran (%d refs moved), but storing the desired state failed: %v", len(rep.Moved), err)
	}
	st, serr := d.status()
	if serr != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "%v", serr)
	}
	return http.StatusOK, &ApplyResult{Status: *st, Pull: rep}, nil
}

func (d *Daemon) handleClear(r *http.Request) (int, any, *httpError) {
	// After a running pull: it must not follow a state cleared under it.
	_, done, herr := d.lockFor(r)
	if herr != nil {
		return 0, nil, herr
	}
	defer done()
	ps, herr := d.prepareDesired(nil)
	if herr != nil {
		return 0, nil, herr
	}
	defer ps.abort()
	if err := d.storeDesired(ps, nil); err != nil {
		return 0, nil, errorf(http.StatusInternalServerError, "%v; the desired state is unchanged", err)
	}
	return http.StatusNoContent, nil, nil
}

// prepareDesired writes ds to a temporary state file (see prepareState):
// 500 naming the file when it cannot, before anything changed.
func (d *Daemon) prepareDesired(ds *Desired) (*pendingState, *httpError) {
	ps, err := prepareState(d.cfg.StatePath, d.cfg.Dir, ds)
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "cannot write the desired state: %v; nothing was changed", err)
	}
	return ps, nil
}

// storeDesired puts the prepared state file in place, then makes ds the
// daemon's desired state: a state that could not be stored is not used
// either.
func (d *Daemon) storeDesired(ps *pendingState, ds *Desired) error {
	renamed, err := ps.commit()
	if !renamed {
		return err
	}
	// In place, if perhaps not durable: it is what a restart would read.
	d.mu.Lock()
	d.desired = ds
	d.mu.Unlock()
	if ds == nil {
		d.logf("desired state cleared: holding the refs")
	} else {
		d.logf("desired state set: zones %v, branches %v, %d pins, prune %v, follow %v", ds.Zones, ds.Branches, len(ds.Pins), ds.Prune, ds.Follow)
	}
	return err
}
