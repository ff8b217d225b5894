package web

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/slipway-dev/slipway/internal/router"
)

// Chart geometry, in the SVG's own units; it scales to its box.
const (
	chartW, chartH = 600, 140
	chartTop       = 16 // room for the scale's label
	chartBottom    = 18 // room for the time axis
)

// chart draws requests per minute as bars, the 5xx part of each in the
// error colour, with the scale and the time axis in text. It is made of
// numbers only: nothing in it comes from an app.
func chart(minutes []router.Minute) template.HTML {
	var peak, total, errs uint64
	for _, m := range minutes {
		peak = max(peak, m.Requests)
		total += m.Requests
		errs += m.Errors
	}
	scale := niceCeil(peak)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title" preserveAspectRatio="none">`, chartW, chartH)
	fmt.Fprintf(&b, `<title id="chart-title">Requests per minute over the last hour: %d in all, %d with a 5xx status, at most %d in a minute</title>`, total, errs, peak)
	plot := float64(chartH - chartTop - chartBottom)
	base := float64(chartH - chartBottom)
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%.1f" x2="%d" y2="%.1f"/>`, base, chartW, base)
	fmt.Fprintf(&b, `<line class="grid" x1="0" y1="%d" x2="%d" y2="%d"/>`, chartTop, chartW, chartTop)
	fmt.Fprintf(&b, `<text class="label" x="2" y="%d">%d/min</text>`, chartTop-4, scale)
	if n := len(minutes); n > 0 {
		slot := float64(chartW) / float64(n)
		for i, m := range minutes {
			if m.Requests == 0 {
				continue
			}
			x := float64(i)*slot + 1
			h := plot * float64(m.Requests) / float64(scale)
			eh := plot * float64(m.Errors) / float64(scale)
			fmt.Fprintf(&b, `<rect class="ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, base-h, slot-2, h-eh)
			if m.Errors > 0 {
				fmt.Fprintf(&b, `<rect class="err" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, base-eh, slot-2, eh)
			}
		}
	}
	fmt.Fprintf(&b, `<text class="label" x="2" y="%d">60 min ago</text>`, chartH-4)
	fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="middle">30 min ago</text>`, chartW/2, chartH-4)
	fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="end">now</text>`, chartW-2, chartH-4)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1),
// so that the scale reads well.
func niceCeil(n uint64) uint64 {
	for p := uint64(1); ; p *= 10 {
		for _, f := range []uint64{1, 2, 5} {
			if f*p >= n {
				return f * p
			}
		}
	}
}
