package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/router"
	"github.com/mlgate/mlgate/serving/batching"
	"github.com/mlgate/mlgate/serving/onnx"
)

// One pipeline serves every prediction, whatever the entry point (REST
// predict on a model or an endpoint, V2 infer on either). An entry point
// decodes its request into an observation and gives the encoder of its
// answer; the pipeline does the rest, in stages:
//
//	resolve  endpoint → variant (pin / unit / sticky entity / weights) → model version, or a model reference
//	inputs   V2 tensors | raw inputs | entity keys → feature plan → lookup → tensors
//	run      ONNX Runtime, fused with concurrent requests for a version served with dynamic batching
//	figures  the endpoint's stats and canary figures
//	answer   the entry point's encoder
//	record   metric labels, hand-off to the recorder, the shadow copy
//
// so that routing, shadow copies, endpoint stats, canary figures, metric
// labels, spans and recording are the same for every entry point.

// observation is one prediction on its way through the pipeline, and then,
// handed to the recorder, the immutable record of it. An entry point fills
// the first group of fields; the stages fill the rest.
type observation struct {
	ctx       context.Context // the request's (for a shadow copy, its own)
	start     time.Time
	requestID string
	// mintID makes the pipeline make up a request id when neither the body
	// nor X-Request-Id gave one: the answer names it.
	mintID bool
	// What to resolve: an endpoint's route, or a model and a version
	// reference (a number, an alias, or empty).
	route          *router.Route
	model, version string
	// Routing hints: the variant pinned by X-Mlgate-Variant, and the unit
	// whose hash picks one.
	pin, unit string
	// The inputs, in one of two forms: a REST predict request (raw inputs or
	// entity keys), or V2 tensors.
	req    *predictRequest
	v2     *inferRequest
	body   []byte // the request as sent, or as the inference table keeps it
	encode encoder
	// record, when set, encodes the answer as the inference table keeps it,
	// where it differs from the answer sent (tensors answered in binary).
	record encoder

	v        int    // the variant chosen, when routed
	variant  string // its name; "shadow" for a shadow copy
	shadow   bool
	selected []int          // the V2 outputs asked for; nil for all
	inputBuf [2]onnx.Tensor // room for the bound V2 inputs of most models
	p        *prediction    // from resolve on (pointing at pred); held until the answer is sent
	pred     prediction
	response []byte
	err      error

	latency time.Duration // from start to the answer, set by handOff
	request string        // body, as handOff copied it
	answer  string        // response, as handOff copied it
}

// observationOf returns a new observation of c's request, started now. It
// is held in the request's scope, which is allocated anyway, so that a
// prediction costs one allocation for the two.
func observationOf(c *fiber.Ctx) *observation { return observationIn(c.UserContext()) }

// observationIn returns a new observation of the request ctx belongs to,
// started now; see observationOf.
func observationIn(ctx context.Context) *observation {
	if sc := scopeOf(ctx); sc != nil && !sc.observed {
		sc.observed = true
		sc.obs = observation{ctx: ctx, start: time.Now()}
		return &sc.obs
	}
	return &observation{ctx: ctx, start: time.Now()}
}

// encoder appends an entry point's answer to a served observation.
type encoder func(b []byte, o *observation) []byte

// prediction is a request resolved to a model version, with its inputs and
// outputs once they are known. Its Loaded is held until Release.
type prediction struct {
	*Loaded
	inputs  []onnx.Tensor
	outputs []onnx.Tensor
	asm     *featurestore.Assembly
	// batch says how a version served with dynamic batching ran the
	// request; zero for one without.
	batch batching.Stats
}

// process runs the stages of o up to its answer: resolve, inputs, run and
// figures. On success o.p holds the model version, which the caller
// releases once the answer is sent; a failure is recorded here, and
// returned (wrapped with the endpoint and variant when routed).
func (s *Server) process(o *observation) error {
	err := s.resolve(o)
	if err == nil {
		t := time.Now()
		err = s.inputs(o)
		o.p.stats.computeInput.add(time.Since(t))
	}
	if err == nil {
		t := time.Now()
		err = s.run(o)
		if err == nil {
			o.p.stats.computeInfer.add(time.Since(t))
			if st := o.p.batch; st.Rows == 0 || st.Reports {
				// One execution a run: a fused run counts once, as
				// Triton's statistics count a batch.
				o.p.stats.executions.Add(1)
			}
		}
	}
	if err != nil && o.p != nil {
		o.p.stats.fail.add(time.Since(o.start))
	}
	if r := o.route; r != nil && o.variant != "" {
		r.Stats().Record(o.v, time.Since(o.start), err != nil)
		if err == nil {
			if mean, ok := predictionMean(o.p.outputs); ok {
				r.Stats().RecordPrediction(o.v, mean)
			}
		}
	}
	if err == nil {
		return nil
	}
	if o.route != nil && o.variant != "" {
		err = fmt.Errorf("endpoint %s, variant %s: %w", o.route.Endpoint(), o.variant, err)
	}
	o.err = err
	s.settleID(o)
	s.observe(o)
	if o.p != nil {
		o.p.Release()
	}
	return err
}

// resolve picks o's variant when it is routed, then acquires the model
// version it names.
func (s *Server) resolve(o *observation) error {
	if r := o.route; r != nil {
		_, span := s.startSpan(o.ctx, "route")
		v, err := choose(r, o.pin, o.unit, o.req)
		endRoute(span, r, v, err)
		if err != nil {
			return err
		}
		o.v, o.variant = v, r.Name(v)
		o.model, o.version = refArgs(r.Model(v))
	}
	return s.take(o)
}

// take acquires the model version o names, for o to hold until its answer.
func (s *Server) take(o *observation) error {
	l, err := s.acquire(o.model, o.version)
	if err != nil {
		return err
	}
	o.pred = prediction{Loaded: l}
	o.p = &o.pred
	return nil
}

// choose picks the variant of a request: the pinned one when given, else
// the one the unit (given, or the first value of the endpoint's sticky
// entity) hashes to, else a random draw by weight.
func choose(r *router.Route, pin, unit string, req *predictRequest) (int, error) {
	if pin != "" {
		v, ok := r.Variant(pin)
		if !ok {
			return 0, invalidInput("variant %q (pinned by %s): endpoint %s has no such variant (it has %s)", pin, HeaderVariant, r.Endpoint(), variantNames(r))
		}
		return v, nil
	}
	if e := r.Sticky(); unit == "" && e != "" && req != nil {
		if vals := req.Entities[e]; len(vals) > 0 {
			unit, _ = featurestore.EntityFromJSON(vals[0])
		}
	}
	return r.Choose(unit, rand.Float64), nil
}

// inputs builds the input tensors of o's model version from V2 tensors,
// raw inputs, or entity keys through the version's feature plan.
func (s *Server) inputs(o *observation) error {
	l, p := o.p.Loaded, o.p
	var err error
	switch {
	case o.v2 != nil:
		if p.inputs, err = bindInputs(o.v2, l, o.inputBuf[:]); err == nil {
			o.selected, err = selectOutputs(o.v2.Outputs, l.Outputs())
		}
	case l.Plan != nil || l.PlanErr != nil:
		p.inputs, p.asm, err = s.featureInputs(o.ctx, l, o.req)
	default:
		p.inputs, err = rawInputs(l, o.req, s.limits)
	}
	return err
}

// run runs the model version on the inputs, fused with other requests'
// when the version is served with dynamic batching; the request's context
// bounds its wait for a batch.
func (s *Server) run(o *observation) error {
	l := o.p.Loaded
	_, span := s.startSpan(o.ctx, "inference")
	outputs, st, err := l.run(o.ctx, o.p.inputs)
	o.p.batch = st
	s.batches.record(o.ctx, l.session, st)
	endInference(span, l, err)
	if err != nil {
		// The inputs fit the model's signature. A failure they caused (an
		// index out of range, say) is the caller's to fix; any other is the
		// model's or ONNX Runtime's: a 500.
		if errors.Is(err, onnx.ErrInput) {
			return invalidInput("model %s version %d rejected the input: %v", l.Version.Name, l.Version.Version, err)
		}
		if errors.Is(err, batching.ErrClosed) {
			return fmt.Errorf("model %s version %d: %w", l.Version.Name, l.Version.Version, err)
		}
		if ctxErr := o.ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return notReady("model %s version %d: the request ended while it waited for a batch: %v", l.Version.Name, l.Version.Version, err)
		}
		// ONNX Runtime's message names its source files: it goes to the log,
		// not to the caller.
		s.log.ErrorContext(o.ctx, "model run failed", "model", l.Version.Name, "version", l.Version.Version, "err", err)
		return fmt.Errorf("model %s version %d failed to run (the server log has ONNX Runtime's message)", l.Version.Name, l.Version.Version)
	}
	if o.selected != nil {
		outputs = pick(outputs, o.selected)
	}
	o.p.outputs = outputs
	return nil
}

// settleID gives o its request id: the entry point's (from the body), else
// the caller's X-Request-Id, else, when the answer names it, one made up.
func (s *Server) settleID(o *observation) {
	if o.requestID != "" {
		return
	}
	if sc := scopeOf(o.ctx); sc != nil && sc.requestID != "" {
		o.requestID = sc.requestID
	} else if o.mintID {
		o.requestID = uuid.NewString()
	}
}

// serve runs o through the pipeline and answers it over HTTP with its
// entry point's encoder, then records it and sends its shadow copy.
func (s *Server) serve(c *fiber.Ctx, o *observation) error {
	if err := s.process(o); err != nil {
		return err
	}
	defer o.p.Release()
	s.settleID(o)
	if o.route != nil {
		c.Set(HeaderVariant, o.variant)
		c.Set(HeaderModel, o.p.Ref)
	}
	bp := responseBuffers.Get().(*[]byte)
	t := time.Now()
	*bp = o.encode((*bp)[:0], o)
	o.p.served(t, o.start)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	_, err := c.Write(*bp)
	o.response = *bp
	if o.record != nil {
		o.response = o.record(nil, o)
	}
	s.settle(o)
	responseBuffers.Put(bp)
	return err
}

// served counts a request answered by p's version: its answer encoded from
// encoded on, the request from start on.
func (p *prediction) served(encoded, start time.Time) {
	now := time.Now()
	p.stats.computeOutput.add(now.Sub(encoded))
	p.stats.success.add(now.Sub(start))
	p.stats.lastInference.Store(now.UnixMilli())
}

// settle ends the pipeline of an answered observation: its shadow copy is
// queued, and it is handed to the recorder.
func (s *Server) settle(o *observation) {
	if r := o.route; r != nil {
		if ref, ok := r.Shadow(rand.Float64); ok {
			s.shadows.offer(shadowJob{o: o.shadowCopy(ref), ref: ref, served: o.p.outputs})
		}
	}
	s.observe(o)
}

// shadowCopy is the observation of o's copy for the shadow model ref: the
// same inputs and request id, its own copy of the body.
func (o *observation) shadowCopy(ref router.ModelRef) *observation {
	model, version := refArgs(ref)
	return &observation{requestID: o.requestID, route: o.route, model: model, version: version, req: o.req, v2: o.v2,
		body: bytes.Clone(o.body), encode: o.encode, record: o.record, variant: "shadow", shadow: true}
}

// runShadow runs a shadow copy: its model version, its inputs, the model.
// Its route only names the endpoint; the variant is the shadow.
func (s *Server) runShadow(o *observation) error {
	err := s.take(o)
	if err != nil {
		return err
	}
	if err = s.inputs(o); err == nil {
		err = s.run(o)
	}
	if err != nil {
		o.p.Release()
	}
	return err
}

// observe labels o's request for its metrics and hands o to the recorder,
// which records it off the request path (see recorder). It copies what o
// keeps: its body and response may be reused once it returns.
func (s *Server) observe(o *observation) {
	label(o)
	_, span := s.startSpan(o.ctx, "table.enqueue")
	o.handOff(s.tables != nil)
	s.recorder.offer(o)
	span.End()
}

// entities is the entity keys of o's request, for the inference table.
func (o *observation) entities() map[string][]json.RawMessage {
	if o.req == nil {
		return nil
	}
	return o.req.Entities
}
