package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness runs (the coordinator, a sidecar, the
// fake provider, a proxy), so what it spends is measured apart from the
// load. It is ready when a JSON line on its stderr names its address.
type proc struct {
	cmd  *exec.Cmd
	url  string
	exit chan struct{} // closed once it has exited

	mu   sync.Mutex
	head bytes.Buffer // the start of its log, for an error
}

// startProc starts cmd and waits up to 20 s for a JSON log line whose
// member key is its URL (the coordinator's "api", the others' "listen").
func startProc(cmd *exec.Cmd, key string) (*proc, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exit: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			p.mu.Lock()
			if p.head.Len() < 8<<10 {
				p.head.Write(sc.Bytes())
				p.head.WriteByte('\n')
			}
			p.mu.Unlock()
			if found {
				continue // drained only: the load's process spends nothing on its log
			}
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				if u, _ := ev[key].(string); u != "" {
					found = true
					ready <- u
				}
			}
		}
		_ = cmd.Wait() // after the last read of its stderr
		close(p.exit)
	}()
	select {
	case p.url = <-ready:
		return p, nil
	case <-p.exit:
	case <-time.After(20 * time.Second):
		p.kill()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return nil, fmt.Errorf("%s did not start within 20s: %s", filepath.Base(cmd.Path), p.head.String())
}

// kill ends the process at once and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exit
}

// stop asks the process to end (SIGTERM, so a sidecar drains) and kills
// it after 5 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

// cpu is the process's user and system CPU time so far.
func (p *proc) cpu() (time.Duration, error) { return processCPU(p.cmd.Process.Pid) }

// processCPU is a process's user and system CPU time so far
// (/proc/<pid>/stat, in 10 ms ticks).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}
