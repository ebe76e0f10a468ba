// Package chart draws the PNG charts of the demo and benchmark reports
// with gonum.org/v1/plot, in one house style: a fixed size, a sans-serif
// font, readable ticks (about seven labelled ticks on a linear axis; 1, 2
// and 5 of each decade on a log axis), the legend to the right of the data
// so it never hides a line, and events (a drain, a kill) marked as labelled
// vertical lines on the x axis.
//
// It owns drawing only: callers choose and prepare the data (smoothing,
// quantiles) and the file names. It never reads files.
//
// The functions are safe for concurrent use; they share no mutable state.
package chart
