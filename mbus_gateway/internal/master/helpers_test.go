package master

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// secondary parses a 16-digit secondary address or fails the test.
func secondary(t testing.TB, s string) mbus.SecondaryAddress {
	t.Helper()
	a, err := mbus.ParseSecondaryAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// telegram builds an RSP_UD frame from primary address a with a long
// header for sec and one record, energy in Wh (DIF 04, VIF 03); more ends
// it with DIF 1F (more records follow).
func telegram(t testing.TB, a byte, sec string, energyWh uint32, more bool) []byte {
	t.Helper()
	sa := secondary(t, sec)
	data := append([]byte(nil), sa[:]...)
	data = append(data, 0x01, 0x00, 0x00, 0x00) // access number, status, signature
	data = append(data, 0x04, 0x03)
	data = binary.LittleEndian.AppendUint32(data, energyWh)
	if more {
		data = append(data, 0x1F)
	}
	return encodeFrame(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CRspUD, A: a, CI: mbus.CIRespVarLong, Data: data})
}

func encodeFrame(t testing.TB, f mbus.Frame) []byte {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var ack = []byte{0xE5}

// Requests as the master must send them.
func sndNKE(a byte) []byte { return shortFrame(mbus.CSndNKE, a) }

func reqUD2(a byte, fcb bool) []byte {
	c := byte(mbus.CReqUD2)
	if fcb {
		c |= mbus.FCB
	}
	return shortFrame(c, a)
}

func selectReq(t testing.TB, sec string) []byte {
	t.Helper()
	sa := secondary(t, sec)
	return encodeFrame(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CSndUD, A: mbus.AddrNetwork, CI: mbus.CISelect, Data: sa[:]})
}

// energy returns the value of the first record of a telegram.
func energy(t testing.TB, tg *mbus.Telegram) float64 {
	t.Helper()
	if len(tg.Records) == 0 {
		t.Fatalf("telegram has no records")
	}
	return tg.Records[0].Value.Num
}

// checkErr checks that err matches every error of want, or with want
// empty that it is nil (else the test stops). It reports whether success
// was wanted, the case in which the caller goes on to check the result.
func checkErr(t testing.TB, what string, err error, want []error) bool {
	t.Helper()
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("%s: got %v, want %v", what, err, w)
		}
	}
	if len(want) == 0 && err != nil {
		t.Fatalf("%s: got %v, want success", what, err)
	}
	return len(want) == 0
}
