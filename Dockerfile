# The controller image: built in a full Rust image, shipped on a distroless base as a
# non-root user with nothing but the binary (the chart runs it read-only, as UID 65532).
# Not built by CI here (no container engine on these machines).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lakeops --bin lakeops

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/lakeops /usr/local/bin/lakeops
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lakeops"]
CMD ["controller"]
