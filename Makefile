# One command sets up and runs, one sets up and tests (see README).
# Debian packages are installed with apt-get when missing (needs root).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := lvm2 prometheus prometheus-alertmanager fuse3 libfuse2 openssl util-linux jq pacemaker pacemaker-cli-utils corosync resource-agents libxml2-utils iproute2
# Build and check the Debian package (make deb, tests/test_deb.py).
DEB_PACKAGES := build-essential fakeroot debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-prometheus-client python3-yaml python3-bcrypt python3-venv python3-build lintian man-db
APT_PACKAGES += $(DEB_PACKAGES)
DEMO_DIR ?= build/demo

.PHONY: run check-demo test system venv bench clean

run: venv
	$(PY) -m vgdrift.demo $(DEMO_DIR) --run

check-demo: venv
	$(PY) -m vgdrift.demo $(DEMO_DIR) --check

test: system venv
	$(PY) -m ruff check exporter tests grafana alerts debian
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

system:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The Debian package, in build/deb/ (built from a copy of the tree).
.PHONY: deb
deb:
	@$(MAKE) --no-print-directory system APT_PACKAGES="$(DEB_PACKAGES)"
	debian/build-deb build/deb

bench: system venv
	$(PY) tests/bench/bench.py

clean:
	rm -rf $(VENV) build
