package main

import (
	"fmt"
	"html"
	"io"
	"math"
)

// The chart's geometry, in pixels, and its logarithmic time axis.
const (
	chartWidth = 1000
	labelWidth = 110 // contender names, left of the plot
	valueWidth = 330 // numbers, right of the plot
	rowHeight  = 26
	panelHead  = 44 // title and subtitle above a panel's rows
	axisHeight = 34 // tick labels below a panel's rows
	axisMinMS  = 20.0
	axisMaxMS  = 10000.0
)

var chartTicks = []float64{20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// A bar is one contender's row: a bar to value, a whisker to whisker.
type bar struct {
	name           string
	value, whisker float64 // ms; whisker 0 for none, value +Inf for "never"
	text           string
}

// chart writes the SVG of the stampede and crash results: for each
// contender, the median caller p50 (bar) and max (whisker) of the stampede,
// and the median time from the kill until every survivor was served.
func (s *suite) chart(w io.Writer) {
	var stampede, crash []bar
	for _, name := range contenders {
		if _, ok := s.runs["stampede"][name]; ok {
			p50, mx := s.medianOf("stampede", name, "p50"), s.medianOf("stampede", name, "max")
			stampede = append(stampede, bar{name, p50, mx, fmt.Sprintf("p50 %s · max %s ms · %s",
				msec(p50), msec(mx), computations(s.medianOf("stampede", name, "computations")))})
		}
		if _, ok := s.runs["crash"][name]; ok {
			rec := s.medianOf("crash", name, "recovery")
			text := fmt.Sprintf("%s ms · %s", msec(rec), computations(s.medianOf("crash", name, "computations")))
			if math.IsInf(rec, 1) {
				text = fmt.Sprintf("never: %s survivors' calls failed", num(s.medianOf("crash", name, "errors")))
			}
			crash = append(crash, bar{name, rec, 0, text})
		}
	}
	panelH := func(n int) int { return panelHead + n*rowHeight + axisHeight }
	height := 20 + panelH(len(stampede)) + 20 + panelH(len(crash)) + 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	y := 20
	writePanel(w, y, fmt.Sprintf("Stampede: %d processes × %d goroutines ask for one cold key at once; computing it takes %v",
		s.o.procs, s.o.goroutines, s.o.compute), "caller latency from the release, median of repetitions: bar = p50, line = max (log scale)", stampede)
	y += panelH(len(stampede)) + 20
	writePanel(w, y, "Crash: the first process to compute is SIGKILLed half-way through",
		"time from the kill until every caller in the surviving processes has a value, median (log scale)", crash)
	fmt.Fprintln(w, "</svg>")
}

// writePanel writes one panel of bars at vertical offset y.
func writePanel(w io.Writer, y int, title, subtitle string, bars []bar) {
	plotW := chartWidth - labelWidth - valueWidth - 20
	x := func(v float64) float64 {
		v = math.Min(math.Max(v, axisMinMS), axisMaxMS)
		return float64(labelWidth) + float64(plotW)*math.Log10(v/axisMinMS)/math.Log10(axisMaxMS/axisMinMS)
	}
	fmt.Fprintf(w, `<text x="10" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", y+14, html.EscapeString(title))
	fmt.Fprintf(w, `<text x="10" y="%d" fill="#555">%s</text>`+"\n", y+32, html.EscapeString(subtitle))
	top := y + panelHead
	bottom := top + len(bars)*rowHeight
	for _, t := range chartTicks {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(t), top, x(t), bottom)
		label := fmt.Sprintf("%g ms", t)
		if t >= 1000 {
			label = fmt.Sprintf("%g s", t/1000)
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(t), bottom+16, label)
	}
	for i, b := range bars {
		ry := top + i*rowHeight
		fill, weight := "#9aa5b1", "normal"
		if b.name == "pgflight" {
			fill, weight = "#1f6feb", "bold"
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" font-weight="%s">%s</text>`+"\n",
			labelWidth-8, ry+17, weight, html.EscapeString(b.name))
		switch {
		case math.IsInf(b.value, 1):
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="#d73a49" opacity="0.35"/>`+"\n",
				labelWidth, ry+5, plotW, rowHeight-10)
		case !math.IsNaN(b.value):
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n",
				labelWidth, ry+5, x(b.value)-float64(labelWidth), rowHeight-10, fill)
		}
		if b.whisker > b.value {
			cy := ry + rowHeight/2
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x(b.value), cy, x(b.whisker), cy, fill)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x(b.whisker), cy-6, x(b.whisker), cy+6, fill)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="%s">%s</text>`+"\n",
			labelWidth+plotW+10, ry+17, weight, html.EscapeString(b.text))
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", labelWidth, top, labelWidth, bottom)
}

// computations says "1 computation" or "n computations".
func computations(n float64) string {
	if n == 1 {
		return "1 computation"
	}
	return num(n) + " computations"
}
