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
