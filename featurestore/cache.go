package featurestore

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cache keeps whole rows read from the stores, for as long as each view's
// CacheTTL allows. Writes through the gateway evict the rows they change;
// writes by others are seen once the entry expires. An expired entry stays
// until the LRU pushes it out: while its store cannot answer, it is the best
// value there is (see stale).
type cache struct {
	lru *lru.Cache[string, cached]
}

type cached struct {
	row   Row       // every feature of the view, in view order
	added time.Time // when it was read from the store
}

func newCache(entries int) (*cache, error) {
	if entries <= 0 {
		return &cache{}, nil
	}
	l, err := lru.New[string, cached](entries)
	if err != nil {
		return nil, err
	}
	return &cache{lru: l}, nil
}

func cacheKey(view, key string) string { return view + "\x00" + key }

func (c *cache) get(v *View, key string, now time.Time) (Row, bool) {
	if c.lru == nil || v.CacheTTL <= 0 {
		return Row{}, false
	}
	e, ok := c.lru.Get(cacheKey(v.Name, key))
	if !ok || now.Sub(e.added) > time.Duration(v.CacheTTL) {
		return Row{}, false
	}
	return e.row, true
}

// stale returns the cached row of key however old, for answering while the
// view's store cannot.
func (c *cache) stale(v *View, key string) (Row, bool) {
	if c.lru == nil || v.CacheTTL <= 0 {
		return Row{}, false
	}
	e, ok := c.lru.Get(cacheKey(v.Name, key))
	return e.row, ok
}

func (c *cache) put(v *View, row Row, now time.Time) {
	if c.lru != nil && v.CacheTTL > 0 {
		c.lru.Add(cacheKey(v.Name, row.Key), cached{row: row, added: now})
	}
}

func (c *cache) evict(v *View, key string) {
	if c.lru != nil {
		c.lru.Remove(cacheKey(v.Name, key))
	}
}

func (c *cache) purge() {
	if c.lru != nil {
		c.lru.Purge()
	}
}

// enabled reports whether rows of v are cached.
func (c *cache) enabled(v *View) bool { return c.lru != nil && v.CacheTTL > 0 }
