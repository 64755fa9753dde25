// Package mbus is the wired M-Bus codec: link-layer frames (EN 13757-2) and
// the application layer with its data records (EN 13757-3).
//
// The package is pure: it does no I/O, starts no goroutines and never logs.
// Every decoder checks bounds before it reads, and errors carry the byte
// offset at which decoding stopped (see FrameError).
package mbus
