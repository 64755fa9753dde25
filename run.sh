#!/bin/sh
# Container entry point: the binary reads /data/options.json and asks the
# Supervisor for the MQTT broker itself.
exec /usr/bin/mbus-gateway run "$@"
