# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `make` builds everything, `make test` runs every test, `make demo` shows ksteer at work.

OUT ?= .output
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
SHARED ?= $(abspath ../shared)

# llhttp, as Debian's node-llhttp ships it (C sources), built strict into the binary.
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_OBJ := $(addprefix $(OUT)/llhttp/,api.o http.o llhttp.o)

ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
CFLAGS ?= -g -O2
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-format-truncation -MMD -MP \
	  -I$(OUT) -I. -I$(LLHTTP_INC) -D_GNU_SOURCE
LDLIBS := -lbpf -lelf -lz -lyaml -ljansson -lmicrohttpd -lldns -lcurl -lssl -lcrypto -lm -lpthread
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
BPF_CFLAGS := -g -O2 --target=bpf -D__TARGET_ARCH_$(ARCH) -D__BPF__ -Wall -Werror -I. -MMD -MP

AGENT_SRC := $(sort $(shell find agent -name '*.c'))
AGENT_OBJ := $(AGENT_SRC:%.c=$(OUT)/%.o) $(LLHTTP_OBJ)
LIB_OBJ := $(filter-out $(OUT)/agent/cli/main.o,$(AGENT_OBJ))
BPF_SRC := $(sort $(wildcard bpf/*.bpf.c))
BPF_OBJ := $(BPF_SRC:bpf/%.bpf.c=$(OUT)/%.bpf.o)
SKELS := $(BPF_SRC:bpf/%.bpf.c=$(OUT)/%.skel.h)
UNIT_SRC := $(sort $(wildcard selftests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:selftests/unit/%.c=$(OUT)/unit/%)
BPFTEST_SRC := $(sort $(wildcard selftests/bpf/test_*.c))
BPFTEST_BIN := $(BPFTEST_SRC:selftests/bpf/%.c=$(OUT)/bpftest/%)

.DELETE_ON_ERROR:
.SECONDARY: $(BPF_OBJ) $(BPF_OBJ:.bpf.o=.tmp.bpf.o)
.PHONY: all deps test unit bpf-test unit-asan cli-test lab-test fuzz demo bench bench-connect vmlinux clean format image image-test image-push test-kernels

all: ksteer $(OUT)/ksteer.1

deps:
	@scripts/deps.sh

ksteer: $(OUT)/ksteer
	@ln -sf $(OUT)/ksteer $@

$(OUT)/ksteer: $(AGENT_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The man page (scdoc); the bash completion is doc/ksteer.bash as it is.
$(OUT)/ksteer.1: doc/ksteer.1.scd
	@mkdir -p $(@D)
	scdoc <$< >$@

$(LLHTTP_OBJ): $(OUT)/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) $(filter -fsanitize%,$(CFLAGS)) -c -o $@ $<

# Every agent object may include a skeleton: generate them first.
$(filter-out $(LLHTTP_OBJ),$(AGENT_OBJ)): $(OUT)/%.o: %.c | $(SKELS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OUT)/%.tmp.bpf.o: bpf/%.bpf.c vmlinux.h
	@mkdir -p $(OUT)
	$(CLANG) $(BPF_CFLAGS) -MF $(OUT)/$*.bpf.d -MT $@ -c $< -o $@

$(OUT)/%.bpf.o: $(OUT)/%.tmp.bpf.o
	$(BPFTOOL) gen object $@ $<

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@

$(OUT)/unit/%: selftests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

$(OUT)/bpftest/%: selftests/bpf/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

# Short coverage-guided runs, FUZZ_SECONDS each: the policy pipeline seeded with every YAML
# we know; PROXY v2, ClientHello/SNI and the mesh resolver seeded by selftests/fuzz/seeds.c.
FUZZ_SECONDS ?= 25
FUZZ_TARGETS := policy proxy sni dns http
FUZZ_SRC := $(sort $(wildcard agent/policy/*.c agent/compile/*.c agent/lib/*.c) agent/dns/dns.c agent/shim/wire.c agent/shim/h1.c agent/shim/route.c)
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(OUT)/fuzz/obj/%.o) $(LLHTTP_OBJ:$(OUT)/llhttp/%=$(OUT)/fuzz/llhttp/%)
.SECONDARY: $(FUZZ_OBJ)
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Werror -I. -I$(OUT) -I$(LLHTTP_INC) -D_GNU_SOURCE -fno-sanitize-recover=all -MMD -MP
$(OUT)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(OUT)/fuzz/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CLANG) -g -O1 -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(OUT)/fuzz/fuzz_%: selftests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c %.o,$^) -lyaml -ljansson -lldns -lssl -lcrypto -lm

$(OUT)/fuzz/seeds: selftests/fuzz/seeds.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -std=gnu11 -Wall -Wextra -Werror -o $@ $< -lldns -lssl -lcrypto

fuzz: $(FUZZ_TARGETS:%=$(OUT)/fuzz/fuzz_%) $(OUT)/fuzz/seeds
	@rm -rf $(OUT)/fuzz/corpus && mkdir -p $(OUT)/fuzz/corpus/policy
	@find $(SHARED)/scenario $(SHARED)/conformance -name '*.yaml' -exec cp --backup=numbered -t $(OUT)/fuzz/corpus/policy {} +
	@$(OUT)/fuzz/seeds $(OUT)/fuzz/corpus
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz_$$t ($(FUZZ_SECONDS) s)"; \
		$(OUT)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(OUT)/fuzz/$$t- \
			$(OUT)/fuzz/corpus/$$t 2>$(OUT)/fuzz/$$t.log || \
			{ tail -n 60 $(OUT)/fuzz/$$t.log; exit 1; }; \
		grep -E 'stat::number_of_executed_units|cov:' $(OUT)/fuzz/$$t.log | tail -n 2; \
	done

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; KSTEER_SHARED=$(SHARED) $$t; done

# The socket programs one by one on real sockets in a fresh netns and cgroup (root).
bpf-test: $(BPFTEST_BIN)
	@set -e; for t in $(BPFTEST_BIN); do echo "== $$t"; $$t; done

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
unit-asan:
	@$(MAKE) --no-print-directory OUT=$(OUT)/asan SAN=1 unit

# End to end on real sockets in the netns lab (root).
lab-test: ksteer
	@set -e; for t in selftests/lab/test_*.sh; do \
		echo "== $$t"; KSTEER=$(abspath $(OUT)/ksteer) SHARED=$(SHARED) bash $$t; done

cli-test: ksteer $(OUT)/ksteer.1
	@KSTEER=$(abspath $(OUT)/ksteer) SHARED=$(SHARED) bash selftests/cli/run.sh

test:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory bpf-test
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory cli-test
	@$(MAKE) --no-print-directory lab-test
	@$(MAKE) --no-print-directory fuzz
	@echo "All tests passed."

# Ratios against baselines measured in the same run (../shared/BENCH.md); RUNS=5 SECS=2.
bench: ksteer $(OUT)/bench/pktgen $(OUT)/bench/sockhash $(OUT)/bench/connect $(OUT)/bench/floor.bpf.o
	@scripts/deps.sh bench
	@bash scripts/bench.sh

# Only the connect4/6 per-call rows (10k services, no lab): about 20 s.
bench-connect: ksteer $(OUT)/bench/connect $(OUT)/bench/floor.bpf.o
	@bash scripts/bench.sh connect4

$(OUT)/bench/connect: selftests/bench/connect.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

$(OUT)/bench/floor.bpf.o: selftests/bench/floor.bpf.c vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -MF $(OUT)/bench/floor.bpf.d -MT $@ -c $< -o $@

$(OUT)/bench/pktgen: selftests/bench/pktgen.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

$(OUT)/bench/sockhash: selftests/bench/sockhash.c maps/ksteer_maps.h
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -I. -o $@ $< -lbpf

# The container image (Containerfile) with buildah, in its own store under $(OUT)/image; the
# first build makes a Debian 12 base with mmdebstrap (minutes: not part of `make test`).
image: $(OUT)/image/built

$(OUT)/image/built: $(OUT)/ksteer Containerfile scripts/image.sh
	@scripts/deps.sh image
	@OUT=$(OUT) bash scripts/image.sh build
	@touch $@

# ksteer run with chroot in the built image's root: its libraries alone, the scenario checked.
image-test: image
	@OUT=$(OUT) KSTEER=$(abspath $(OUT)/ksteer) SHARED=$(SHARED) bash selftests/image/test_image.sh

# make image-push DEST=docker://registry.example/ksteer:0.1
image-push: image
	@OUT=$(OUT) bash scripts/image.sh push $(DEST)

# The objects, unit and lab tests on Debian's stock kernels under qemu (selftests/kernels/).
test-kernels: ksteer $(UNIT_BIN) $(BPFTEST_BIN)
	@scripts/deps.sh kernels
	@OUT=$(OUT) SHARED=$(SHARED) bash selftests/kernels/run.sh

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@SHARED=$(SHARED) bash scripts/demo.sh

format:
	clang-format -i $(AGENT_SRC) $(shell find agent maps bpf selftests -name '*.h') $(BPF_SRC) $(UNIT_SRC)

clean:
	rm -rf $(OUT) ksteer

# (not into the image store: its Debian roots are full of *.d directories)
-include $(shell find $(OUT) -path $(OUT)/image -prune -o -name '*.d' -print 2>/dev/null)
