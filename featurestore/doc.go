// Package featurestore serves online features: named feature views (groups of
// typed features keyed by entity columns, with a TTL after which a value is
// stale, held in one online store), the OnlineStore interface every backend
// implements (featurestore/embedded, featurestore/redis,
// featurestore/cassandra, and featurestore/feast, which reads the views of
// store feast-redis from what Feast materialized into Redis), an LRU cache in
// front of the stores, and Plans: a model version's feature spec compiled
// once into the reads and the tensor layout a prediction needs, so that a
// request for many entities and features is one round trip per store.
package featurestore
