package faults

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the proxy's connection to its target.
const dialTimeout = 5 * time.Second

// A Proxy forwards TCP connections from a free port of 127.0.0.1 to a target
// address, and stalls or cuts them on demand, as a failing network would.
//
// A Proxy is safe for concurrent use by multiple goroutines. Close stops it
// and waits for its goroutines.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup // the accept loop, and two pumps per connection

	mu      sync.Mutex
	gateCh  chan struct{} // closed when the stall ends; nil when not stalled
	closed  bool
	closing chan struct{} // closed by Close
	links   map[*link]struct{}
}

// link is one proxied connection: the client's and the proxy's to the target.
type link struct {
	client, server net.Conn
	open           int // directions still forwarding; guarded by Proxy.mu
}

// NewProxy listens on a free port of 127.0.0.1 and forwards every connection
// it accepts to target. The caller must Close it.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, closing: make(chan struct{}), links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients connect to, 127.0.0.1:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the port clients connect to.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Stall stops forwarding, in both directions, on every connection, open now
// or accepted later, until Resume. Nothing is lost: Resume delivers what the
// peers sent meanwhile, in order, including a close. Each peer sees its
// connection open and its writes accepted while the proxy's buffers last,
// but no answer, as through a network that black-holes traffic. Unlike a
// real partition, the proxy's kernel still acknowledges what the peers send,
// so their TCP keepalives and tcp_user_timeout never fire.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gateCh == nil {
		p.gateCh = make(chan struct{})
	}
}

// Resume ends a stall: the proxy delivers what it held back and forwards
// again. Resuming a proxy that is not stalled does nothing.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gateCh != nil {
		close(p.gateCh)
		p.gateCh = nil
	}
}

// Cut resets every connection open now: both peers get a TCP reset, as when
// a firewall or a load balancer drops a connection. Later connections are
// forwarded as usual (or stalled, during a stall).
func (p *Proxy) Cut() {
	p.mu.Lock()
	links := p.links
	p.links = make(map[*link]struct{})
	p.mu.Unlock()
	for l := range links {
		reset(l.client)
		reset(l.server)
	}
}

// Conns returns how many connections the proxy forwards now.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops listening, resets every connection and waits until the
// proxy's goroutines have returned. Closing a closed proxy does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects client to the target and forwards between them.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.gate() {
		reset(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		reset(client)
		return
	}
	l := &link{client: client, server: server, open: 2}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		reset(client)
		reset(server)
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pump(l, client, server)
	}()
	p.pump(l, server, client)
}

// pump copies from src to dst, waiting at the gate before each write. At
// the end of src it half-closes dst; on any error it resets the link.
func (p *Proxy) pump(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				p.drop(l)
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.drop(l)
				return
			}
		}
		if errors.Is(err, io.EOF) && p.gate() {
			p.halfClose(l, dst)
			return
		}
		if err != nil {
			p.drop(l)
			return
		}
	}
}

// gate waits while the proxy is stalled, and reports whether it is still
// open.
func (p *Proxy) gate() bool {
	for {
		p.mu.Lock()
		ch, closed := p.gateCh, p.closed
		p.mu.Unlock()
		if closed {
			return false
		}
		if ch == nil {
			return true
		}
		select {
		case <-ch:
		case <-p.closing:
		}
	}
}

// halfClose passes an end of stream on to dst, and closes the link once
// both directions have ended.
func (p *Proxy) halfClose(l *link, dst net.Conn) {
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	p.mu.Lock()
	l.open--
	done := l.open == 0
	if done {
		delete(p.links, l)
	}
	p.mu.Unlock()
	if done {
		l.client.Close()
		l.server.Close()
	}
}

// drop resets both sides of l.
func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	reset(l.client)
	reset(l.server)
}

// reset closes c so that its peer gets a TCP reset rather than an orderly
// end of stream.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
