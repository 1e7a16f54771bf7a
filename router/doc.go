// Package router will hold endpoints and their traffic policies: weighted A/B
// splits, sticky assignment by a hashed request key, shadow copies, and canary
// schedules that promote or roll back by themselves. Policies are immutable
// snapshots swapped atomically. Nothing is built yet; see issue 4.
package router
