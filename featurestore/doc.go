// Package featurestore will hold entities, feature views, the online stores
// (Redis, Cassandra, embedded) behind one interface, the LRU cache in front of
// them, and bulk ingestion. A model version's feature spec is compiled here into
// a lookup plan that reads every feature a request needs in one round trip per
// store. Nothing is built yet; see issue 3.
package featurestore
