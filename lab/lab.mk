# VM lab targets; included by the top-level Makefile (which exports .venv/bin on PATH).
# See docs/lab.md. Needs root (tap devices, bridge, debootstrap).

# Release of the platforms that name none (`lab_release: trixie` on a platform boots Debian 13).
LAB_RELEASE ?= bookworm
LAB_PLAYBOOK ?= ansible/site.yml
# Run after LAB_PLAYBOOK by `make lab`: shows the deployed sample stack working (empty: skip).
LAB_DEMO ?= ansible/playbooks/lab-demo.yml
LAB_NAME ?= lab
LAB_SCENARIO ?= default
# What `make test-vm` (and so `make test`) runs, one after the other (`bare`: on demand, see molecule/bare).
LAB_TEST_SCENARIOS ?= default
LAB_ACCEL ?= auto
# Ansible over Mitogen for the lab's playbooks, as in .config/molecule/config.yml (empty: Ansible's own).
LAB_ANSIBLE_STRATEGY ?= ANSIBLE_STRATEGY_PLUGINS=$(CURDIR)/lab/ansible_plugins/strategy ANSIBLE_STRATEGY=mitogen_linear ANSIBLE_TIMEOUT=60
export LAB_RELEASE LAB_ACCEL

# chromium: the verify step opens Flower in a headless browser (molecule/default/tests/test_flower_browser.py).
LAB_APT_PACKAGES := qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client iproute2 chromium
LAB_APT_STAMP := .cache/lab/apt.stamp
LAB_INVENTORY := .cache/lab/run/$(LAB_NAME)/inventory.yml
# Extra inventory sources combined with the generated one (connection details):
# the lab fleet's group_vars/host_vars for the site playbook.
LAB_EXTRA_INVENTORY ?= $(wildcard ansible/inventories/lab)
# One wheelhouse per target Python: cp311 for Debian 12, cp313 for Debian 13 (lab/build-wheelhouse.sh).
# celery_common_wheelhouse_src (build/wheelhouse-{python_tag}.tar) picks each host's.
WHEELHOUSE_TAGS ?= cp311 cp313
WHEELHOUSE := $(foreach tag,$(WHEELHOUSE_TAGS),build/wheelhouse-$(tag).tar)
WHEELHOUSE_INPUTS := requirements/app.txt pyproject.toml lab/build-wheelhouse.sh lab/wheelhouse_closure.py \
	$(shell find app celeryconfig -name '*.py' 2>/dev/null)
# Another app's wheelhouses (docs/own-app.md): `make app-wheelhouse APP_PROJECT=DIR` builds
# APP_WHEELHOUSE_DIR/wheelhouse-TAG.tar for every tag in WHEELHOUSE_TAGS from the project in DIR and
# its requirements or lock file (default DIR/requirements.txt).
APP_PROJECT ?=
APP_REQUIREMENTS ?=
APP_WHEELHOUSE_DIR ?= build/$(notdir $(abspath $(APP_PROJECT)))
ifneq ($(filter app-wheelhouse,$(MAKECMDGOALS)),)
ifeq ($(strip $(APP_PROJECT)),)
$(error app-wheelhouse: give the app's project directory: make app-wheelhouse APP_PROJECT=DIR [APP_REQUIREMENTS=FILE] [APP_WHEELHOUSE_DIR=DIR])
endif
endif

.PHONY: lab lab-down lab-status lab-image wheelhouse app-wheelhouse test-vm lab-apt

$(LAB_APT_STAMP): lab/lab.mk
	@mkdir -p $(@D)
	@$(call apt_install,$(LAB_APT_PACKAGES))
	@touch $@

lab-apt: $(LAB_APT_STAMP)

lab-image: $(LAB_APT_STAMP) ## build the Debian base image for the VM lab (cached by recipe hash; LAB_RELEASE=trixie for Debian 13)
	lab/build-image.sh

build/wheelhouse-%.tar: $(WHEELHOUSE_INPUTS) | $(VENV_STAMP)
	lab/build-wheelhouse.sh $*

# The uv the lab's releases are built with (celery_common_uv_src): the controller's, pinned in
# requirements/controller.txt.
build/uv: $(VENV_STAMP)
	@mkdir -p $(@D)
	install -m 0755 $(BIN)/uv $@

# The lab's own CA and Redis certificate, used when LAB_REDIS_TLS=1 turns Redis' TLS on (a second run
# changes nothing), for the Redis hosts of the lab's topology and their private addresses.
build/redis-tls/ca.crt: lab/redis-tls-certs.sh .config/molecule/config.yml | $(APT_STAMP) $(VENV_STAMP)
	lab/redis-tls-certs.sh build/redis-tls

wheelhouse: $(WHEELHOUSE) build/uv ## offline wheels per target Python: build/wheelhouse-cp311.tar (Debian 12), -cp313.tar (Debian 13)

app-wheelhouse: | $(VENV_STAMP) ## offline wheels of your own app per target Python: APP_PROJECT=DIR [APP_REQUIREMENTS=FILE] [APP_WHEELHOUSE_DIR=DIR]
	@set -e; for tag in $(WHEELHOUSE_TAGS); do \
	  lab/build-wheelhouse.sh --project '$(APP_PROJECT)' $(if $(APP_REQUIREMENTS),--requirements '$(APP_REQUIREMENTS)') \
	    --out '$(APP_WHEELHOUSE_DIR)' $$tag; \
	done

lab: setup $(LAB_APT_STAMP) $(WHEELHOUSE) build/uv build/redis-tls/ca.crt ## boot the VM lab, run $(LAB_PLAYBOOK) on it, print how to reach it
	@set -euo pipefail; \
	images=$$($(BIN)/python lab/labctl images --molecule-file molecule/$(LAB_SCENARIO)/molecule.yml); \
	$(BIN)/python lab/labctl up --name $(LAB_NAME) $$(printf -- '--image-dir=%s ' $$images) \
	  --molecule-file molecule/$(LAB_SCENARIO)/molecule.yml; \
	ANSIBLE_PIPELINING=true ANSIBLE_FORKS=4 ANSIBLE_HOST_KEY_CHECKING=false $(LAB_ANSIBLE_STRATEGY) \
	  $(BIN)/ansible-playbook -i $(LAB_INVENTORY) $(addprefix -i ,$(LAB_EXTRA_INVENTORY)) $(LAB_PLAYBOOK); \
	if [ -n "$(LAB_DEMO)" ]; then \
	  ANSIBLE_PIPELINING=true ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_CALLBACK_RESULT_FORMAT=yaml $(LAB_ANSIBLE_STRATEGY) \
	    $(BIN)/ansible-playbook -i $(LAB_INVENTORY) $(addprefix -i ,$(LAB_EXTRA_INVENTORY)) $(LAB_DEMO); \
	fi; \
	$(BIN)/python lab/labctl status --name $(LAB_NAME); \
	echo "tear down with: make lab-down"

lab-status: ## show the running lab's hosts and forwarded ports
	@$(BIN)/python lab/labctl status --name $(LAB_NAME)

lab-down: ## stop the VM lab and remove its VMs, taps and overlays
	@python3 lab/labctl down --name $(LAB_NAME)

# One `molecule test -s NAME` after the other, stopping at the first failure; each stage's wall time goes
# to molecule/results/timings.json (and timings.md) with the commit (lab/timed_molecule.py).
test-vm: setup $(LAB_APT_STAMP) $(WHEELHOUSE) build/uv build/redis-tls/ca.crt ## molecule test of every VM scenario in LAB_TEST_SCENARIOS, one at a time, timed
	@$(BIN)/python lab/timed_molecule.py test $(LAB_TEST_SCENARIOS)

test: test-vm
