package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		advance []time.Duration
		after   time.Duration
		every   time.Duration
		fired   int // timer fires plus ticks read after the advances
	}{
		{name: "timer not yet due", advance: []time.Duration{time.Second}, after: 2 * time.Second},
		{name: "timer due", advance: []time.Duration{2 * time.Second}, after: 2 * time.Second, fired: 1},
		{name: "timer due in steps", advance: []time.Duration{time.Second, time.Second}, after: 2 * time.Second, fired: 1},
		{name: "ticker ticks once per read", advance: []time.Duration{3 * time.Second}, every: time.Second, fired: 1},
		{name: "ticker before its first tick", advance: []time.Duration{time.Millisecond}, every: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(start)
			var c <-chan time.Time
			if tt.every > 0 {
				tk := f.NewTicker(tt.every)
				defer tk.Stop()
				c = tk.C()
			} else {
				c = f.After(tt.after)
			}
			var total time.Duration
			for _, d := range tt.advance {
				f.Advance(d)
				total += d
			}
			if got := f.Now(); !got.Equal(start.Add(total)) {
				t.Errorf("Now = %v, want %v", got, start.Add(total))
			}
			fired := 0
			for {
				select {
				case <-c:
					fired++
					continue
				default:
				}
				break
			}
			if fired != tt.fired {
				t.Errorf("fired %d times, want %d", fired, tt.fired)
			}
		})
	}
}

func TestFakeBlockUntilAndStop(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	done := make(chan struct{})
	go func() {
		<-f.After(time.Minute)
		close(done)
	}()
	f.BlockUntil(1)
	f.Advance(time.Minute)
	<-done
	tk := f.NewTicker(time.Second)
	tk.Stop()
	if n := f.Waiters(); n != 0 {
		t.Fatalf("a stopped ticker still waits: %d waiters", n)
	}
}
