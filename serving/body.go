package serving

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/recovery"
	"github.com/mlgate/mlgate/serving/tables"
)

// Request bodies are streamed (fiber's StreamRequestBody): fasthttp reads the
// headers and at most what its read buffer holds of the body (a byte at
// least, 1 KiB at most) before the handlers run, so a
// caller is authenticated and its route known before its body is read, and
// nothing is reserved from a declared Content-Length. The middleware body
// then reads it, bounded by the route's limit and by bodyBudget, the memory
// all bodies being read or served may hold at once.

// errBusy: the server holds as much request body memory as it may
// (server.max_body_memory); the caller may retry shortly.
var errBusy = errkind.New(errkind.Unavailable, "busy")

// errUnsupportedEncoding: a Content-Encoding mlgate does not decode.
var errUnsupportedEncoding = errors.New("unsupported content encoding")

// localBodyRead marks a request whose body was read to its end. The
// connection of any other request that carried a body is closed after the
// answer, since its unread rest would be read as the next request (see
// leftBody).
const localBodyRead = "bodyRead"

// bodyBudget counts the bytes of request bodies held at once.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports false when that would exceed max.
func (b *bodyBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// bodyBufs pools the buffers bodies are read into.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse: a rare large body's
// memory goes back to the runtime rather than staying in the pool.
const maxPooledBody = 1 << 20

// body reads the request body, up to server.max_body_bytes, for the handlers
// after it, and gives its memory back once they return. Over the limit is
// 413, before any of the body is read when Content-Length declares it;
// gzip and deflate bodies are decoded, bounded by the same limit.
func (s *Server) body(c *fiber.Ctx) error {
	req := c.Request()
	limit := s.opts.MaxBodyBytes
	declared := int64(req.Header.ContentLength()) // -1: chunked; -2: none given
	if declared == 0 {
		c.Locals(localBodyRead, true)
		return c.Next()
	}
	if declared > limit {
		return tooLarge(declared, limit, "server.max_body_bytes")
	}
	reserve := declared
	if declared < 0 {
		reserve = limit
	}
	if !s.bodies.take(reserve) {
		c.Set(fiber.HeaderRetryAfter, "1")
		return errkind.New(errBusy, "the server holds as many request bodies as server.max_body_memory (%d bytes) allows; retry shortly", s.bodies.max)
	}
	defer s.bodies.give(reserve)
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodyBufs.Put(buf)
		}
	}()
	buf.Reset()
	if err := readBody(c, buf, limit); err != nil {
		return err
	}
	c.Locals(localBodyRead, true)
	return c.Next()
}

// readBody reads c's body into buf, decoded, and makes it the request's
// body: at most limit bytes, read and decoded.
func readBody(c *fiber.Ctx, buf *bytes.Buffer, limit int64) error {
	req := c.Request()
	if stream := c.Context().RequestBodyStream(); stream != nil {
		if err := copyLimited(buf, stream, limit); err != nil {
			return err
		}
	} else if err := copyLimited(buf, bytes.NewReader(req.Body()), limit); err != nil {
		return err
	}
	enc := strings.ToLower(strings.TrimSpace(string(req.Header.Peek(fiber.HeaderContentEncoding))))
	if enc != "" && enc != "identity" {
		decoded, err := decode(enc, buf.Bytes(), limit)
		if err != nil {
			return err
		}
		req.Header.Del(fiber.HeaderContentEncoding)
		req.SetBodyRaw(decoded)
		return nil
	}
	req.SetBodyRaw(buf.Bytes())
	return nil
}

// copyLimited appends src to dst up to its end, refusing more than limit
// bytes. It reads into dst's own memory, allocating nothing else.
func copyLimited(dst *bytes.Buffer, src io.Reader, limit int64) error {
	for {
		dst.Grow(bytes.MinRead)
		b := dst.AvailableBuffer()
		b = b[:min(int64(cap(b)), limit+1-int64(dst.Len()))]
		n, err := src.Read(b)
		dst.Write(b[:n])
		switch {
		case int64(dst.Len()) > limit:
			return tooLarge(-1, limit, "server.max_body_bytes")
		case err == io.EOF:
			return nil
		case err != nil:
			return invalidInput("request body: could not be read to its end (%v)", err)
		}
	}
}

// decode inflates a gzip or deflate body into at most limit bytes.
func decode(enc string, raw []byte, limit int64) ([]byte, error) {
	var r io.ReadCloser
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, invalidInput("request body: Content-Encoding gzip: %v", err)
		}
		r = zr
	case "deflate":
		// HTTP's deflate is the zlib format (RFC 9110 8.4.1.2), as
		// tritonclient sends it; some clients send raw DEFLATE, which has
		// no zlib header.
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			zr = flate.NewReader(bytes.NewReader(raw))
		}
		r = zr
	default:
		return nil, errkind.New(errUnsupportedEncoding, "Content-Encoding %q: not supported; send the body as it is, or gzip or deflate", enc)
	}
	defer r.Close()
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, limit+1))
	switch {
	case n > limit:
		return nil, errkind.New(errTooLarge, "request body decodes (Content-Encoding %s) to more than the limit of %d bytes (server.max_body_bytes)", enc, limit)
	case err != nil:
		return nil, invalidInput("request body: Content-Encoding %s: %v", enc, err)
	}
	return out.Bytes(), nil
}

// upload admits a model upload within registry.max_model_bytes (and room
// for the form's framing): over it is 413, before any of it is read when
// Content-Length declares it. The handler reads the form as a stream whose
// file part goes to a temporary file, so an upload takes no body memory; a
// chunked upload is first spooled to a temporary file, bounded the same.
func (s *Server) upload(c *fiber.Ctx) error {
	limit := s.reg.MaxModelBytes() + uploadOverhead
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return errkind.New(errUnsupportedEncoding, "Content-Encoding %q: not supported on model uploads; send the form as it is", enc)
	}
	n := int64(c.Request().Header.ContentLength())
	if n > limit {
		return tooLarge(n, limit, "registry.max_model_bytes")
	}
	if n >= 0 {
		return c.Next()
	}
	f, err := os.CreateTemp("", "mlgate-upload-*")
	if err != nil {
		return fmt.Errorf("spool a chunked upload: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := spool(f, c.Context().RequestBodyStream(), limit); err != nil {
		return err
	}
	c.Locals(localBodyRead, true)
	c.Request().SetBodyStream(f, -1)
	return c.Next()
}

// spool copies a chunked body to f, at most limit bytes, and rewinds f.
func spool(f *os.File, body io.Reader, limit int64) error {
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	switch {
	case n > limit:
		return tooLarge(-1, limit, "registry.max_model_bytes")
	case err != nil:
		return invalidInput("request body: could not be read to its end (%v)", err)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

func tooLarge(n, limit int64, key string) error {
	if n < 0 {
		return errkind.New(errTooLarge, "request body is larger than the limit of %d bytes (%s)", limit, key)
	}
	return errkind.New(errTooLarge, "request body of %d bytes is larger than the limit of %d bytes (%s)", n, limit, key)
}

// guard is the outermost handler of every request but instrument's: a panic
// below it is logged with its stack, counted (mlgate_panics_total), and
// answered 500 with the request id; the process goes on. It also closes the
// connection after the answer when the gateway is draining, or when a body
// came that no middleware read.
func (s *Server) guard(c *fiber.Ctx) (err error) {
	if s.draining.Load() {
		s.lastRequest.Store(time.Now().UnixNano())
	}
	defer func() {
		if v := recover(); v != nil {
			err = s.panicked(c, v)
		}
		if c.Locals(localBodyRead) == nil && c.Request().Header.ContentLength() != 0 && c.Context().RequestBodyStream() != nil {
			leaveBody(c)
		}
		if s.draining.Load() {
			c.Context().SetConnectionClose()
		}
	}()
	return c.Next()
}

// What is left of a body no handler read (a refused request, or a route
// that takes none) is read and dropped before the answer, at most
// drainBytes for at most drainTime: the connection then stays usable, and a
// client still sending reads its answer (closing a socket with unread data
// resets the connection, which can destroy the answer on its way). A body
// longer or slower than that closes the connection.
const (
	drainBytes = 4 << 20
	drainTime  = time.Second
)

// leaveBody drops what is left of c's body, or closes the connection after
// the answer.
func leaveBody(c *fiber.Ctx) {
	conn := c.Context().Conn()
	conn.SetReadDeadline(time.Now().Add(drainTime))
	n, err := io.CopyN(io.Discard, c.Context().RequestBodyStream(), drainBytes+1)
	conn.SetReadDeadline(time.Time{}) // the server sets the next request's
	if n > drainBytes || !errors.Is(err, io.EOF) {
		c.Context().SetConnectionClose()
	}
}

// errInternal: a fault of mlgate's own; its message says no more than the
// request id to quote.
var errInternal = errors.New("internal error")

// panicked logs and counts a panic of the handlers of c, and returns the
// error that answers it.
func (s *Server) panicked(c *fiber.Ctx, v any) error {
	id := requestIDOf(c)
	recovery.Recovered(s.log.With("request_id", id, "method", c.Method(), "path", c.Path()), panicHandler, v)
	return errkind.New(errInternal, "internal error: the gateway failed on this request (request id %s); the fault is logged", id)
}

// requestIDOf returns the id of c's request (the caller's X-Request-Id),
// making one up and answering it in X-Request-Id when there is none.
func requestIDOf(c *fiber.Ctx) string {
	sc := scopeOf(c.UserContext())
	if sc != nil && sc.requestID != "" {
		return sc.requestID
	}
	id := uuid.NewString()
	if sc != nil {
		sc.requestID = id // instrument answers it
	} else {
		c.Set(HeaderRequestID, id)
	}
	return id
}

// Where serving recovers panics: the where of mlgate_panics_total.
const (
	panicHandler  = "http handler"
	panicRecorder = "recorder"
	panicShadow   = "shadow copy"
)

// PanicSites are the places where panics of a request, or of the jobs that
// follow one, are recovered: the gateway reports each at 0 from the start.
var PanicSites = []string{panicHandler, panicRecorder, panicShadow, tables.PanicSite}
