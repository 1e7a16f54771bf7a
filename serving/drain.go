package serving

import (
	"net"
	"sync"
)

// drainListener lets Shutdown refuse new connections while the open ones
// finish: refuse closes the socket, so dials are refused at once, while
// Accept waits, so that the HTTP server goes on serving the connections it
// has, until Close.
type drainListener struct {
	net.Listener
	refused   chan struct{}
	closed    chan struct{}
	refuseOne sync.Once
	closeOne  sync.Once
	err       error // of closing the socket
}

func newDrainListener(ln net.Listener) *drainListener {
	return &drainListener{Listener: ln, refused: make(chan struct{}), closed: make(chan struct{})}
}

// Accept returns the next connection; once refusing, it waits for Close and
// returns net.ErrClosed.
func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		return c, nil
	}
	select {
	case <-l.refused:
		<-l.closed
		return nil, net.ErrClosed
	default:
		return nil, err
	}
}

// refuse closes the socket: new connections are refused.
func (l *drainListener) refuse() error {
	l.refuseOne.Do(func() {
		close(l.refused)
		l.err = l.Listener.Close()
	})
	return l.err
}

// Close closes the socket if refuse has not, and ends Accept.
func (l *drainListener) Close() error {
	err := l.refuse()
	l.closeOne.Do(func() { close(l.closed) })
	return err
}
