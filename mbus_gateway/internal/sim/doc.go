// Package sim is a software M-Bus: meters that answer a master the way real
// wired meters do on EN 13757-2, fed with real telegrams.
//
// A Bus holds meters and their link-layer state. It is served to a master
// over TCP (like an M-Bus-to-TCP converter, see ServeTCP) or over a
// pseudo-terminal (like a USB M-Bus master, see OpenPTY), so the gateway's
// real transport code talks to it unchanged.
//
// What the meters do:
//
//   - SND_NKE (10 40 A CS 16) is acknowledged with E5. It resets the frame
//     count bit state, restarts a multi-telegram sequence at the first
//     telegram and, sent to 253, 254 or 255, deselects the meters it reaches.
//   - REQ_UD2 (10 5B/7B A CS 16) is answered with the meter's current
//     telegram (RSP_UD, C = 08, A = the meter's primary address).
//     The frame count bit follows EN 13757-2 clause 5.5 and IEC 60870-5-2:
//     with FCV set, a FCB that differs from the previous request's FCB
//     asks for the next telegram (after the last one the sequence wraps to
//     the first); the same FCB asks again for the telegram just sent (the
//     master's retry after a lost answer). The first request after a reset
//     gets the first telegram whatever its FCB, because masters disagree on
//     the initial FCB. Without FCV the meter cannot tell a retry from a new
//     request, so it answers the first telegram and restarts the sequence.
//   - SND_UD to 253 with CI 52 and an 8-byte pattern selects by secondary
//     address (EN 13757-3 clause 11.3, wildcards: ID nibble F, manufacturer
//     FFFF, version FF, medium FF): each matching meter answers E5 and is
//     selected, each other meter is deselected. Frames to 253 then reach
//     the selected meters.
//   - SND_UD with CI 51 and the record 01 7A nn sets the primary address to
//     nn; CI 50 (application reset) restarts the telegram sequence; other
//     CI 51 writes and the baud-rate CIs B8-BF are acknowledged and ignored.
//   - REQ_UD1 is acknowledged with E5: the meters have no alarm data.
//   - 254 reaches every meter and all of them answer; 255 reaches every
//     meter and none answers.
//
// When several meters answer the same request, their answers overlap on
// the wire. A slave sends a space (binary 0) by drawing more current
// (EN 13757-2 clause 4), so the master sees a 0 wherever any slave sends one:
// the bytes of the answers are combined with bitwise AND, each at the byte
// where it starts. Two E5 acknowledgements sent at once arrive as one E5,
// one a byte later as E5 E5; two long frames arrive as garbage that fails
// its checksum. This is deterministic.
//
// Timing: each answer starts after the bus's response delay plus the
// meter's own delay, counted from the end of the request on the bus: with a
// baud rate set, the request first takes its own wire time, as behind a
// TCP converter or a USB master. Each byte takes 11 bit times (start, 8
// data, even parity, stop) and the answer is written in small chunks, each
// at its exact due time measured from the start of the answer, so the pace
// does not drift. Options.Echo loops every request back, as an echoing
// converter does.
//
// Faults (see Fault) are injected per meter, always, every Nth answer or
// with a probability drawn from a seeded generator, optionally only a
// number of times, so runs are reproducible. They can be changed while the bus is being served.
package sim
