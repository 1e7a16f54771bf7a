// Package drift will hold baselines, mergeable streaming histograms, the
// PSI / KS / Jensen-Shannon / chi-square statistics, monitors over inference
// tables, and the alerts and retraining webhooks they raise. Nothing is built
// yet; see issue 5.
package drift
