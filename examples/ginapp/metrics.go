package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gormsession/gormsession"
)

// sessionCollector exposes a Manager's Stats as Prometheus metrics, read
// at each scrape.
type sessionCollector struct {
	m *gormsession.Manager

	sessions, pending, syncAge, syncUp             *prometheus.Desc
	evictions, syncErrors, lookups, lookupsRefused *prometheus.Desc
}

func newSessionCollector(m *gormsession.Manager) *sessionCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gormsession_"+name, help, labels, nil)
	}
	return &sessionCollector{
		m:              m,
		sessions:       d("sessions", "Sessions in memory, by kind (signed_in, anonymous).", "kind"),
		pending:        d("pending_revocations", "Revocations the database has not acknowledged yet."),
		syncAge:        d("sync_age_seconds", "Seconds since the change feed was last read successfully."),
		syncUp:         d("sync_ok", "1 when the last read of the change feed succeeded, else 0."),
		evictions:      d("anonymous_evictions_total", "Anonymous sessions evicted from memory."),
		syncErrors:     d("sync_errors_total", "Failed reads of the change feed."),
		lookups:        d("lookups_total", "Database lookups of tokens not in memory."),
		lookupsRefused: d("lookups_refused_total", "Unknown tokens refused without a lookup (rate limit, recent miss)."),
	}
}

// Describe sends the descriptors of every metric.
func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sessions, c.pending, c.syncAge, c.syncUp, c.evictions, c.syncErrors, c.lookups, c.lookupsRefused} {
		ch <- d
	}
}

// Collect reads the Manager's Stats and sends them.
func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.sessions, float64(st.SignedIn), "signed_in")
	gauge(c.sessions, float64(st.Anonymous), "anonymous")
	gauge(c.pending, float64(st.PendingRevocations))
	if st.Syncing {
		gauge(c.syncAge, time.Since(st.LastSync).Seconds())
		ok := 1.0
		if st.LastSyncError != nil {
			ok = 0
		}
		gauge(c.syncUp, ok)
	}
	counter(c.evictions, st.AnonymousEvictions)
	counter(c.syncErrors, st.SyncErrors)
	counter(c.lookups, st.Lookups)
	counter(c.lookupsRefused, st.LookupsRefused)
}
