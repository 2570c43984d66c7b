// A small exporter for the native-histogram tests, built offline in GOPATH
// mode against Debian's golang-github-prometheus-client-golang-dev (1.14).
// It serves a counter with exemplars, a classic histogram, a native
// histogram (with classic buckets too) and a summary on /metrics, in
// protobuf, OpenMetrics or Prometheus text as the Accept header asks.
// It observes 100 values at start and, unless -static, 5 more every second.
package main

import (
	"flag"
	"log"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address")
	targets := flag.Int("series", 1, "label values per metric (bench)")
	static := flag.Bool("static", false, "observe only at start (values stay fixed)")
	ports := flag.Int("ports", 1, "also listen on the next ports-1 ports (bench: many targets)")
	flag.Parse()
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demo_requests_total", Help: "Requests served.",
	}, []string{"code"})
	classic := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "demo_classic_seconds", Help: "A classic histogram.",
		Buckets: []float64{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5},
	}, []string{"path"})
	native := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "demo_native_seconds", Help: "A native histogram with classic buckets.",
		Buckets:                     []float64{0.01, 0.1, 1, 10},
		NativeHistogramBucketFactor: 1.1,
	}, []string{"path"})
	summ := prometheus.NewSummary(prometheus.SummaryOpts{
		Name: "demo_summary_bytes", Help: "A summary.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01},
	})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "demo_temperature_celsius", Help: "A gauge with a \"quoted\" help\nand a newline."})
	reg.MustRegister(reqs, classic, native, summ, gauge)
	gauge.Set(21.5)
	rnd := rand.New(rand.NewSource(1))
	observe := func(n int) {
		for i := 0; i < n; i++ {
			for s := 0; s < *targets; s++ {
				p := "/p" + strconv.Itoa(s)
				v := rnd.ExpFloat64() / 10
				classic.WithLabelValues(p).Observe(v)
				native.WithLabelValues(p).(prometheus.ExemplarObserver).ObserveWithExemplar(v, prometheus.Labels{"trace_id": "t" + strconv.Itoa(i)})
				summ.Observe(v * 1000)
			}
			reqs.WithLabelValues("200").(prometheus.ExemplarAdder).AddWithExemplar(1, prometheus.Labels{"trace_id": "abc" + strconv.Itoa(i%10)})
		}
	}
	observe(100)
	if !*static {
		go tick(observe)
	}
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		log.Fatal(err)
	}
	first, _ := strconv.Atoi(port)
	for i := 1; i < *ports; i++ {
		go func(a string) { log.Print(http.ListenAndServe(a, nil)) }(net.JoinHostPort(host, strconv.Itoa(first+i)))
	}
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func tick(observe func(int)) {
	for range time.Tick(time.Second) {
		observe(5)
	}
}
