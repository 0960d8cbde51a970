#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The shim's whole test again with sockmap off: the shim works the same without it.
SOCKMAP=off exec bash "$(dirname "$0")/test_shim.sh"
