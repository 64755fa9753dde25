//go:build tools

package main

import (
	_ "github.com/albenik/go-serial/v2"
	_ "github.com/chromedp/chromedp"
	_ "github.com/creack/pty"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/zerolog"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/viper"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
)
