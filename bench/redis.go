package main

// What the predict scenarios ask Redis itself: where it is, its CPU time,
// its command and read counters, and the removal of the benchmark's keys.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisAddr returns the one standalone Redis in TEST_REDIS_ADDR.
func redisAddr() (string, error) {
	addr := strings.TrimSpace(os.Getenv("TEST_REDIS_ADDR"))
	switch {
	case addr == "":
		return "", errors.New("TEST_REDIS_ADDR is not set: the predict scenarios need a Redis server; `make bench` starts one of its own (bench/with-redis.sh), or start one and set TEST_REDIS_ADDR=host:port")
	case strings.Contains(addr, ","):
		return "", fmt.Errorf("TEST_REDIS_ADDR=%s: the benchmark needs one standalone Redis, not a cluster", addr)
	}
	return addr, nil
}

// redisInfo returns the fields of INFO's sections as strings.
func redisInfo(ctx context.Context, rdb *goredis.Client, sections ...string) (map[string]string, error) {
	text, err := rdb.Info(ctx, sections...).Result()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && !strings.HasPrefix(k, "#") {
			fields[k] = v
		}
	}
	return fields, nil
}

// infoInt reads an integer field, or a key=value item of one, such as
// ("cmdstat_hmget", "calls"). A missing field is 0 (commandstats lists only
// commands that ran).
func infoInt(fields map[string]string, key, item string) int64 {
	v := fields[key]
	if item != "" {
		v = ""
		for part := range strings.SplitSeq(fields[key], ",") {
			if k, val, ok := strings.Cut(part, "="); ok && k == item {
				v = val
			}
		}
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// redisCPU returns a function that reads the CPU time (user and system)
// Redis has used, or -1 when INFO fails.
func redisCPU(rdb *goredis.Client) func() time.Duration {
	return func() time.Duration {
		fields, err := redisInfo(context.Background(), rdb, "cpu")
		if err != nil {
			return -1
		}
		var total float64
		for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
			s, err := strconv.ParseFloat(fields[k], 64)
			if err != nil {
				return -1
			}
			total += s
		}
		return time.Duration(total * float64(time.Second))
	}
}

// redisTraffic is what Redis counted between two INFOs.
type redisTraffic struct {
	hmgets, commands, reads, inBytes int64
}

// trafficOf returns what Redis counted while do ran, less what two INFOs in
// a row count by themselves. Redis counts each read event on a client's
// socket (total_reads_processed): a client that waits for each reply before
// sending the next command causes at least one read event per command,
// while a pipeline's commands arrive together and are read a socket buffer
// at a time.
func trafficOf(ctx context.Context, rdb *goredis.Client, do func() error) (redisTraffic, error) {
	delta := func(do func() error) (redisTraffic, error) {
		before, err := redisInfo(ctx, rdb, "stats", "commandstats")
		if err != nil {
			return redisTraffic{}, err
		}
		if err := do(); err != nil {
			return redisTraffic{}, err
		}
		after, err := redisInfo(ctx, rdb, "stats", "commandstats")
		if err != nil {
			return redisTraffic{}, err
		}
		d := func(key, item string) int64 { return infoInt(after, key, item) - infoInt(before, key, item) }
		return redisTraffic{
			hmgets:   d("cmdstat_hmget", "calls"),
			commands: d("total_commands_processed", ""),
			reads:    d("total_reads_processed", ""),
			inBytes:  d("total_net_input_bytes", ""),
		}, nil
	}
	base, err := delta(func() error { return nil })
	if err != nil {
		return redisTraffic{}, err
	}
	t, err := delta(do)
	if err != nil {
		return redisTraffic{}, err
	}
	t.hmgets -= base.hmgets
	t.commands -= base.commands
	t.reads -= base.reads
	t.inBytes -= base.inBytes
	return t, nil
}

// benchRedis connects to the Redis the predict and Feast scenarios use
// (TEST_REDIS_ADDR), and returns its address and a client of it.
func benchRedis(ctx context.Context) (string, *goredis.Client, error) {
	addr, err := redisAddr()
	if err != nil {
		return "", nil, err
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return "", nil, fmt.Errorf("redis %s (TEST_REDIS_ADDR): %w", addr, err)
	}
	return addr, rdb, nil
}

// deleteKeys unlinks every key that matches the SCAN pattern.
func deleteKeys(ctx context.Context, rdb *goredis.Client, pattern string) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
