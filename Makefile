# Entry points; each script installs what it needs (see tests/env/install.sh).
.PHONY: demo test crds bench faults

# A local control plane + AWS emulator, the controller, the examples applied and converging.
demo:
	./tests/env/demo.sh

# The whole test suite: fmt, clippy, helm lint, unit and end-to-end tests.
test:
	./tests/env/test.sh

# Regenerates the chart's CRDs from the Rust API types.
crds:
	cargo run --quiet -p lakeops -- crds > charts/lakeops/crds/lakeops.dev.yaml

# Scale benchmarks (memory per 1,000 objects, converging many lakes, a resync's calls).
bench:
	./tests/env/bench.sh

# Fault injection at full size: lost answers (10% and 30% of writes), errors, stalls, SIGKILLs.
faults:
	./tests/env/faults.sh
