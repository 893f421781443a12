package redisstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server child process on a loopback port, started by the tests.
type redisServer struct {
	port int
	addr string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// errNoRedis says why the tests cannot run; under CI=true it fails them instead of skipping.
var errNoRedis = errors.New("redis-server not found in PATH (apt-get install -y redis-server)")

// newRedisServer starts redis-server on a free port and waits until it accepts connections.
func newRedisServer() (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errNoRedis
	}
	var lastErr error
	for range 3 { // the free port can be taken between probing and binding
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		s := &redisServer{port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// start runs redis-server on s.port (again, after kill) and returns once its log says it is
// ready, or with an error if it exits first.
func (s *redisServer) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "notice")
	cmd.SysProcAttr = childProcAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := false
	var tail []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		tail = append(tail, sc.Text())
		if strings.Contains(sc.Text(), "Ready to accept connections") {
			ready = true
			break
		}
	}
	if !ready {
		_ = cmd.Wait()
		return fmt.Errorf("redis-server on port %d did not start: %s", s.port, strings.Join(tail, "\n"))
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // drained until the process exits
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

// kill stops the server abruptly (SIGKILL) and waits for it to exit.
func (s *redisServer) kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// client returns a go-redis client for the server with the settings the Store documents.
func (s *redisServer) client(tb testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// requireRedis skips the test when redis-server is missing, except under CI=true where it
// fails: CI must run these tests.
func requireRedis(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, errNoRedis) && os.Getenv("CI") != "true" {
		tb.Skipf("skipping: %v", err)
	}
	tb.Fatalf("redis-server: %v", err)
}

// dedicatedRedis starts a server for one test that kills or restarts it.
func dedicatedRedis(tb testing.TB) *redisServer {
	s, err := newRedisServer()
	requireRedis(tb, err)
	tb.Cleanup(s.kill)
	return s
}

var shared struct {
	once sync.Once
	srv  *redisServer
	err  error
}

// sharedRedis returns the server shared by the tests of this run (stopped by TestMain).
// Tests isolate themselves with a unique key prefix.
func sharedRedis(tb testing.TB) *redisServer {
	shared.once.Do(func() { shared.srv, shared.err = newRedisServer() })
	requireRedis(tb, shared.err)
	return shared.srv
}

// uniquePrefix gives each test its own keys and channel on the shared server.
func uniquePrefix(tb testing.TB) string {
	return "test:" + tb.Name() + ":" + randomHex()[:8] + ":"
}

// waitFor polls cond (a query of Redis state) until it holds, failing after a generous bound.
func waitFor(tb testing.TB, what string, cond func(ctx context.Context) bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond(ctx) {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
