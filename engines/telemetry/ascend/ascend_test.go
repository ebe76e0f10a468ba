package ascend

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

func fx(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/ascend/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseInfoA3(t *testing.T) {
	rep, err := ParseInfo(bytes.NewReader(fx(t, "npu-smi-info-a3-ascend910-26.1.0.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 16 || rep.Model != "Ascend910" || rep.Mixed {
		t.Fatalf("report = %+v", rep)
	}
	c := rep.Cards[1]
	if got, want := c.MemoryUsed.String(), "3.8853935104e+10"; got != want {
		t.Errorf("card 1 used = %s, want %s (37054 MiB)", got, want)
	}
	if got, want := c.MemoryTotal.String(), "6.8719476736e+10"; got != want {
		t.Errorf("card 1 total = %s, want %s", got, want)
	}
	if rep.Cards[15].ID != "0000:83:00.0" {
		t.Errorf("last card = %+v", rep.Cards[15])
	}
}

// TestParseInfoA5 reads npu-smi 26.2 on Ascend 950DT: "NPU ID" and
// "NPU Util(%)" two-word columns, continuation rows with empty first
// cells, Bus-Id NA, and a process table with one process.
func TestParseInfoA5(t *testing.T) {
	rep, err := ParseInfo(bytes.NewReader(fx(t, "npu-smi-info-a5-ascend950dt-26.2.0.txt")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 8 || rep.Model != "Ascend950DT" || rep.Mixed || rep.Utilization.String() != "0" {
		t.Fatalf("report = %+v", rep)
	}
	c := rep.Cards[0]
	if c.Index != 0 || c.ID != "" || c.MemoryUsed.String() != "5.333057536e+09" || c.MemoryTotal.String() != "1.03079215104e+11" {
		t.Errorf("card 0 = %+v (want 5086 of 98304 MiB, no bus id)", c)
	}
	if got := rep.Cards[7].MemoryUsed.String(); got != "4.993318912e+09" {
		t.Errorf("card 7 used = %s, want 4762 MiB", got)
	}
}

// A busy 950 card in the same layout (the PR variant prints a bus id):
// NPU Util(%) is the utilisation. (A derived text: the layout of the
// real 950DT capture, values ours.)
func TestParseInfoA5Busy(t *testing.T) {
	text := `+-------------------------------------------------------------------------------------------------+
| npu-smi 25.7.rc1                                 Version: 25.7.rc1                              |
+--------+------------------+---------------+-----------------------------------------------------+
| NPU ID | Name             | Health        | Power(W)    Temp(C)           Hugepages-Usage(page) |
|        |                  | Bus-Id        | NPU Util(%) Memory-Usage(MB)  HBM-Usage(MB)         |
+========+==================+===============+=====================================================+
| 0      | Ascend950PR      | Alarm         | 205.7       71                0     / 0             |
|        |                  | 0000:71:00.0  | 100         0    / 0          90633 / 114688        |
+========+==================+===============+=====================================================+
| 1      | Ascend950PR      | OK            | 192.7       57                0     / 0             |
|        |                  | 0000:61:00.0  | 50          0    / 0          30492 / 114688        |
+========+==================+===============+=====================================================+
+---------------------------+---------------+-----------------------------------------------------+
| NPU ID                    | Process id    | Process name       | Process memory(MB)    | Process id in container |
+===========================+===============+=====================================================+
| No running processes found in NPU 0                                                             |
+===========================+===============+=====================================================+
| No running processes found in NPU 1                                                             |
+===========================+===============+=====================================================+
`
	rep, err := ParseInfo(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 2 || rep.Model != "Ascend950PR" || rep.Utilization.String() != "0.75" || rep.Cards[0].ID != "0000:71:00.0" {
		t.Errorf("report = %+v", rep)
	}
	bad := strings.Replace(text, "| 100         0    / 0", "| lots        0    / 0", 1)
	if _, err := ParseInfo(strings.NewReader(bad)); !errors.Is(err, engines.ErrMalformed) || !strings.Contains(err.Error(), "NPU Util(%)") {
		t.Errorf("bad util: %v", err)
	}
}

// Older generations: one chip per NPU, no Phy-ID column (910B layout),
// and 310P with DDR only.
func TestParseInfoOtherLayouts(t *testing.T) {
	b910 := `+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                 Version: 23.0.rc3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 96.0        36                0    / 0             |
| 0                         | 0000:C1:00.0  | 45          0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 91.5        36                0    / 0             |
| 0                         | 0000:01:00.0  | 0           0    / 0          3161 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
`
	rep, err := ParseInfo(strings.NewReader(b910))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 2 || rep.Model != "910B3" || rep.Utilization.String() != "0.225" {
		t.Errorf("910B: %+v", rep)
	}
	p310 := `| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310P3                 | OK              | NA           47                0     / 0             |
| 0       0                     | 0000:01:00.0    | 10           1700  / 21534                           |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| No running processes found in NPU 0                                                                    |
+===============================+=================+======================================================+
`
	rep, err = ParseInfo(strings.NewReader(p310))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 1 || rep.Model != "310P3" || rep.Cards[0].MemoryTotal.String() != "2.2580035584e+10" {
		t.Errorf("310P: %+v", rep)
	}
}

func TestParseInfoErrors(t *testing.T) {
	full := string(fx(t, "npu-smi-info-a3-ascend910-26.1.0.txt"))
	lines := strings.SplitAfter(full, "\n")
	cases := []struct{ name, text, mention string }{
		{"empty", "", "empty"},
		{"cut mid line", full[:strings.Index(full, "37302/")+3], "truncated"},
		{"cut between NPU and Chip rows", strings.Join(lines[:7], ""), "truncated"},
		{"cut after a Chip row", strings.Join(lines[:8], ""), "truncated"},
		{"no header", "| 0     Ascend910 | OK |\n", "before the column header"},
		{"bad aicore", strings.Replace(full, "| 0                    0    / 0                37397/ 65536", "| x                    0    / 0                37397/ 65536", 1), "AICore"},
		{"used over total", strings.Replace(full, "37397/ 65536", "97397/ 65536", 1), "out of range"},
		{"missing cell", strings.Replace(full, "| 0000:9D:00.0  |", "", 1), "cells"},
		{"not a table", "hello\n", "header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseInfo(strings.NewReader(c.text))
			if !errors.Is(err, engines.ErrMalformed) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

// TestParseInfoCutAtRule (issue 13): a capture of `npu-smi info` cut
// just after any +---+ or +===+ rule before the process table looks
// closed, yet it is not a whole output: every cut copy of the real A3
// and Ascend 950 captures is refused as truncated, none yields a partial
// count of NPUs; the whole captures parse.
func TestParseInfoCutAtRule(t *testing.T) {
	for _, name := range []string{"npu-smi-info-a3-ascend910-26.1.0.txt", "npu-smi-info-a5-ascend950dt-26.2.0.txt"} {
		full := string(fx(t, name))
		if _, err := ParseInfo(strings.NewReader(full)); err != nil {
			t.Fatalf("%s whole: %v", name, err)
		}
		lines := strings.SplitAfter(full, "\n")
		cuts, mention := 0, "header" // before the column header: no header row
		for i, l := range lines {
			if strings.Contains(l, "Process id") {
				break // from here on the process table is there
			}
			if strings.Contains(l, "Health") {
				mention = "truncated"
			}
			if !strings.HasPrefix(l, "+") {
				continue
			}
			cuts++
			cut := strings.Join(lines[:i+1], "")
			rep, err := ParseInfo(strings.NewReader(cut))
			if !errors.Is(err, engines.ErrMalformed) || !strings.Contains(err.Error(), mention) {
				t.Errorf("%s cut after line %d: %v NPUs, err %v; want an error saying %q", name, i+1, rep.Count, err, mention)
			}
		}
		if cuts < 10 {
			t.Errorf("%s: only %d rules before the process table", name, cuts)
		}
	}
}

func TestParseUsages(t *testing.T) {
	rep, err := ParseUsages(bytes.NewReader(fx(t, "npu-smi-info-t-usages-i0-910.txt")))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Cards[0]
	if rep.Count != 1 || c.Utilization.String() != "0" || c.MemoryTotal.String() != "3.4359738368e+10" || c.MemoryUsed.String() != "0" {
		t.Errorf("report = %+v", rep)
	}
	rep, err = ParseUsages(strings.NewReader("HBM Capacity(MB) : 65536\nHBM Usage Rate(%) : 50\nAicore Usage Rate(%) : 73\n"))
	if err != nil || rep.Cards[0].Utilization.String() != "0.73" || rep.Cards[0].MemoryUsed.String() != "3.4359738368e+10" {
		t.Errorf("rep %+v err %v", rep, err)
	}
	for _, bad := range []struct{ text, mention string }{
		{"HBM Capacity(MB) : 1\n", "Aicore"},
		{"Aicore Usage Rate(%) : x\n", "line 1"},
		{"Aicore Usage Rate(%) : 500\n", "outside"},
		{"Aicore Usage Rate(%) : 5", "truncated"},
	} {
		if _, err := ParseUsages(strings.NewReader(bad.text)); !errors.Is(err, engines.ErrMalformed) || !strings.Contains(err.Error(), bad.mention) {
			t.Errorf("%q: err = %v", bad.text, err)
		}
	}
}

func TestParseExporter(t *testing.T) {
	rep, err := ParseExporter(bytes.NewReader(fx(t, "npu-exporter-metrics-910a-testdata.prom")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 8 || rep.Model != "910Awn-Ascend-V1" || rep.Utilization.String() != "0" {
		t.Fatalf("report = %+v", rep)
	}
	// Every memory total in the sample is 0: memory is unknown, not 0 of 0.
	if rep.Cards[0].MemoryTotal.IsKnown() || rep.Cards[0].MemoryUsed.IsKnown() {
		t.Errorf("card 0 memory = %s/%s", rep.Cards[0].MemoryUsed, rep.Cards[0].MemoryTotal)
	}
	rep, err = ParseExporter(strings.NewReader("npu_chip_info_utilization{id=\"0\",model_name=\"Ascend910B3\"} 37 1606402000\nnpu_chip_info_hbm_total_memory{id=\"0\"} 65536 1606402000\nnpu_chip_info_hbm_used_memory{id=\"0\"} 32768 1606402000\n"))
	if err != nil || rep.Cards[0].Utilization.String() != "0.37" || rep.Cards[0].MemoryUsed.String() != "3.4359738368e+10" {
		t.Errorf("rep %+v err %v", rep, err)
	}
	if _, err := ParseExporter(strings.NewReader("machine_npu_nums 8\n")); !errors.Is(err, telemetry.ErrNoDevices) {
		t.Errorf("no chips: %v", err)
	}
}

func fuzzCheck(t *testing.T, rep telemetry.Report, err error) {
	if err != nil {
		if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
			t.Fatalf("untyped: %v", err)
		}
		return
	}
	if len(rep.Cards) == 0 {
		t.Fatal("success without cards")
	}
	for _, c := range rep.Cards {
		if u, ok := c.Utilization.Get(); ok && (u < 0 || u > 1.0001) {
			t.Fatalf("util %v", u)
		}
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add(fx(f, "npu-smi-info-a3-ascend910-26.1.0.txt"))
	f.Add(fx(f, "npu-smi-info-a5-ascend950dt-26.2.0.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseInfo(bytes.NewReader(b))
		fuzzCheck(t, rep, err)
	})
}

func FuzzParseUsages(f *testing.F) {
	f.Add(fx(f, "npu-smi-info-t-usages-i0-910.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseUsages(bytes.NewReader(b))
		fuzzCheck(t, rep, err)
	})
}

func FuzzParseExporter(f *testing.F) {
	f.Add(fx(f, "npu-exporter-metrics-910a-testdata.prom"))
	f.Add([]byte("npu_chip_info_utilization{id=\"0\",model_name=\"910B3\"} 37 1606402000\nnpu_chip_info_hbm_total_memory{id=\"0\"} 65536 1606402000\nnpu_chip_info_hbm_used_memory{id=\"0\"} 32768\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseExporter(bytes.NewReader(b))
		fuzzCheck(t, rep, err)
	})
}
