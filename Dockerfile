# eventshop's container image: the six daemons, the console and shopctl in one image,
# built the way CI builds them, on Debian bookworm like the tests.
#
#   build    debian:bookworm, the packages of scripts/install-deps (the very
#            script CI runs, so the list cannot drift), then scripts/test's
#            configure and build commands
#   runtime  debian:bookworm-slim with only the shared libraries the
#            programs load, curl for the healthchecks, the binaries,
#            deploy/, and a non-root user
#
# The program to run is the command: order-service, payment-service,
# inventory-service, email-service, analytics-service, shipping-service, eventshop-console, or
# `shopctl create-topics /app/deploy/topics.txt` (docker-compose.yml).
# scripts/check-compose checks that the build steps below are still those
# of scripts/install-deps and scripts/test.

FROM debian:bookworm AS build

# The dependencies first, on their own: this layer is rebuilt when the
# package list changes, not on every source edit. install-deps installs the
# whole list CI uses (the build's packages and the test tools with them).
COPY scripts/install-deps /src/scripts/install-deps
RUN /src/scripts/install-deps && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src

# scripts/build's configure and build, with BUILD_DIR=/src/build, and
# without the crash tests' fault points (ES_FAULT_POINTS): this image is
# what a user deploys.
RUN cmake -S /src -B /src/build -DES_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DES_FAULT_POINTS=OFF
RUN cmake --build /src/build -j "$(nproc)"

# The programs the image ships, without their debug sections.
RUN install -d /out && \
	for p in order-service payment-service inventory-service email-service analytics-service \
		shipping-service; do \
		install -m 0755 -s "/src/build/services/$p/$p" /out/ || exit 1; \
	done && \
	install -m 0755 -s /src/build/tools/shopctl/shopctl /out/ && \
	install -m 0755 -s /src/build/tools/console/eventshop-console /out/


FROM debian:bookworm-slim AS runtime

# What the programs load (librdkafka, jansson, libmicrohttpd, libpq,
# libuuid, libcurl for email-service's SMTP, libjwt for bearer tokens) and curl for
# the healthchecks.
RUN apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		librdkafka1 libjansson4 libmicrohttpd12 libpq5 libuuid1 libcurl4 libjwt0 \
		curl ca-certificates && \
	rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 eventshop && \
	useradd --system --uid 10001 --gid eventshop --home-dir /app --no-create-home \
		--shell /usr/sbin/nologin eventshop

COPY --from=build /out/ /usr/local/bin/
COPY deploy/ /app/deploy/
# email-service's maildir (./var/maildir) when SMTP_URL is not set.
RUN install -d -o eventshop -g eventshop /app/var /app/var/maildir

WORKDIR /app
USER 10001:10001
# Inside a container the daemons must listen beyond loopback.
ENV HTTP_BIND=0.0.0.0
EXPOSE 8080 8081 8082 8083 8084 8085 8086
CMD ["shopctl", "--help"]
