// Package drift watches the inputs and predictions a model sees in
// production for drift away from what it saw in training: baselines,
// mergeable streaming histograms, the PSI, Kolmogorov–Smirnov,
// Jensen–Shannon and chi-square statistics, monitors that judge windows of
// traffic against a baseline, and the webhook alerts they raise. It is a
// library: it does no I/O but the webhook posts and the calls of the Store
// and Fleet it is given, and serving composes it with the registry, the
// inference table and a clock.
//
// # Baselines
//
// A Baseline holds a histogram per feature and per prediction output, as a
// model version registers it in its metadata ("baseline": {...}, read by
// DecodeBaseline) or as computed from samples by a BaselineBuilder (a
// training set, or a reference window of the inference table). A numeric
// histogram has edges e[0] < ... < e[k−1] and k+1 counts: an underflow bin
// (x < e[0]), k−1 bins [e[i−1], e[i]) of which the last is closed, and an
// overflow bin (x > e[k−1]):
//
//	{"features": {
//	   "age":     {"edges": [18, 30, 45, 90], "counts": [0, 410, 380, 210, 0]},
//	   "country": {"categories": {"fr": 520, "de": 300, "it": 150}, "other": 30}},
//	 "predictions": {"score": {"edges": [0, 0.5, 1], "counts": [0, 700, 300, 0]}}}
//
// A categorical histogram counts each value, at most 1000 of them, and the
// rest as "other". Counts are numbers of observations, not shares, because
// the tests depend on the sample size. BaselineBuilder.Build places numeric
// edges at quantiles (10 bins of equal mass by default, from the minimum to
// the maximum, so the underflow and overflow bins start empty) and keeps the
// most frequent categories.
//
// # Histograms
//
// Numeric and Categorical are the streaming histograms a monitor fills:
// lock-free atomic counters, so many request goroutines add to them at
// once, and mergeable: the merge of two histograms over the same edges is
// the histogram of the union of their values, so replicas add up.
//
// # Statistics
//
// Each statistic compares a baseline histogram (counts b_i, total B, shares
// P_i = b_i/B) with a window's over the same bins or categories (w_i, W,
// Q_i):
//
//   - PSI, the population stability index: Σ (q_i − p_i) ln(q_i/p_i) with
//     p_i = max(P_i, 1e-4) and q_i = max(Q_i, 1e-4), so that an empty bin
//     adds a large but finite term. 0.1 to 0.2 is a moderate shift, above
//     0.2 a significant one.
//   - KS, the two-sample Kolmogorov–Smirnov test (numeric only): D, the
//     largest distance between the two binned empirical distribution
//     functions, and its asymptotic p-value P(K > √n·D) under the Kolmogorov
//     distribution, n = B·W/(B+W). Binning hides distance within the bins, so
//     D is a lower bound of the raw values' D, and the test conservative.
//   - Chi-square test of homogeneity (categorical only) of the 2×k table of
//     counts, without continuity correction, its p-value from
//     stats.ChiSquareP with k−1 degrees of freedom. Columns whose expected
//     counts fall below 5 are pooled first (see ChiSquare), so that a few
//     values never seen in the baseline raise no alarm.
//   - JS, the Jensen–Shannon distance: the square root of the Jensen–Shannon
//     divergence in bits, ½ Σ P_i log₂(P_i/M_i) + ½ Σ Q_i log₂(Q_i/M_i) with
//     M = (P+Q)/2, in [0, 1].
//
// For a categorical series the window's values are laid out as the
// baseline's categories, then one "other" column for the baseline's other
// values and every value the baseline does not list.
//
// # Monitors and windows
//
// A MonitorSpec (DecodeMonitorSpec) names what to watch (an endpoint or a
// model reference), the baseline ("model" or a time range of the inference
// table), the window length, the features (all by default) and whether to
// watch predictions too, the thresholds, the webhook and the cooldown:
//
//	{"name": "churn-inputs", "endpoint": "churn", "baseline": "model",
//	 "window": "15m", "min_samples": 200, "predictions": true,
//	 "thresholds": {"psi": 0.2, "ks_p": 0.01, "js": 0.1, "chi2_p": 0.01},
//	 "webhook": {"url": "https://ci.example.com/hooks/retrain", "secret": "..."},
//	 "cooldown": "1h"}
//
// A rule of 0 is off. A numeric series drifts when PSI > psi or the KS p <
// ks_p; a categorical one when the chi-square p < chi2_p; either when JS >
// js. A Monitor counts the values given to Observe in the current window's
// histograms; values absent or of the wrong type count as missing. Evaluate
// closes the window once it has lasted Window (or at once, forced), opens
// the next, and judges each series with each rule that applies, in a
// WindowReport. A series with fewer values than min_samples is reported but
// never drifts. The monitor keeps the last 96 reports.
//
// A Service keeps the monitors and their specs in a Store. The specs load
// in NewService; the monitors start (find their baselines) in Start, once
// the models they watch have loaded. A monitor whose model or baseline
// cannot be found stays listed with StatusError and the error, observes
// nothing, and is tried again on later ticks, a second after the failure
// and then at doubling intervals up to a minute.
//
// # Alerts
//
// When a window drifts, Evaluate attaches an Alert to its report, unless
// the monitor alerted less than Cooldown ago: the monitor applies the
// cooldown, so at most one alert per monitor per cooldown leaves it, and a
// suppressed one is still visible in the report (drifted, not alerted). The
// caller hands the alert to a Notifier, which posts it to the webhook from
// its own goroutine through a bounded queue:
//
//	{"event": "drift.detected", "monitor": "churn-inputs", "endpoint": "churn",
//	 "model": {"name": "churn", "version": 3, "uuid": "..."},
//	 "window": {"start": "...", "end": "..."},
//	 "drifted": [{"feature": "age", "metric": "psi", "value": 0.31, "threshold": 0.2}]}
//
// With a secret, the header X-Mlgate-Signature holds "sha256=" and the hex
// HMAC-SHA256 of the body keyed with the secret (Sign; receivers check it
// with Verify). X-Mlgate-Delivery is the same in every attempt of one alert.
// A delivery is tried up to 5 times by default, waiting 1s, 2s, 4s, ...
// between attempts, until the receiver answers 2xx; a 4xx other than 408
// and 429 is final. A webhook may not point at a link-local, metadata,
// unspecified or multicast address (CheckWebhookAddr): a URL with such an
// address is refused in the spec, and the default client refuses to
// connect to one that a host name resolves to.
//
// # A fleet
//
// Replicas of a gateway share their monitors through a Fleet (WithFleet;
// drift/postgres keeps one in PostgreSQL). Each replica counts what it
// serves in its own windows, which open on the clock's multiples of the
// window's length (AlignWindow), so that every replica's window i covers
// the same [i·Window, (i+1)·Window). Every second (FleetPublishInterval) a
// replica publishes a WindowSnapshot of each monitor's current window,
// keyed by replica, monitor, window start and the model version compared
// with, and the final one when the window ends; it judges none. The leader
// (WithLeader) judges each window FleetGrace after its end on the merge of
// every replica's snapshots of it (Monitor.JudgeWindow, the statistics of
// Evaluate), and claims the report in the fleet, once per window: only the
// claim's winner calls the AlertHook and the webhook. The cooldown runs
// from the end of the last window that alerted, as the fleet records it,
// so a new leader keeps it. An alert waits in the fleet's outbox until its
// webhook answered 2xx (Notifier.NotifyDelivery); a replica that becomes
// the leader sends the waiting ones again, with the same X-Mlgate-Delivery.
// A monitor's report on any replica shows the fleet's history and the
// fleet's counts of the current window, the other replicas' as they last
// published them.
package drift
