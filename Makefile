# Tasks beyond `bash .ci/run` (which runs every test, the 60-second soak
# run included).

# The soak run (mbus_gateway/internal/e2e/soak_test.go): SOAK_DURATION,
# SOAK_METERS, SOAK_INTERVAL and SOAK_SEED change it, e.g.
#   SOAK_DURATION=30m make soak
SOAK_DURATION ?= 60s
SOAK_TIMEOUT ?= 3h

.PHONY: soak
soak:
	SOAK_DURATION=$(SOAK_DURATION) go test -count=1 -run '^TestSoak$$' -v -timeout $(SOAK_TIMEOUT) ./mbus_gateway/internal/e2e

# The benchmarks whose results docs/performance.md lists.
.PHONY: bench
bench:
	go test -run '^$$' -bench DecodeCorpus -benchmem -count 10 ./mbus_gateway/internal/mbus
	go test -run '^$$' -bench ReadMeter -benchtime 20x ./mbus_gateway/internal/master
	go test -run '^$$' -bench ScanSecondary -benchtime 2x ./mbus_gateway/internal/master
	go test -run '^$$' -bench Enqueue -benchtime 3s ./mbus_gateway/internal/store
	go test -run '^$$' -bench Publish -benchtime 20000x ./mbus_gateway/internal/mqtt
