#!/bin/sh
//bin/true; exec node --max-semi-space-size=1 "$0" "$@"
// Started as a program (./bin/lmx.js, or lmx on the PATH), the line above is sh's: it runs
// Node with V8's young generation capped at 1 MiB, as lmx serve's runners have it
// (RUNNER_V8_FLAGS): lmx's JavaScript holds little per token, and the default semi-spaces
// grow to several MiB beside the model. To Node it is a comment. (Not `env -S`: BusyBox's
// env, as on Alpine, has no -S.)
import("../dist/cli/main.js").then((m) => m.main(process.argv.slice(2)));
