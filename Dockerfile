# nip-sidecar, CPU image (tfjs wasm backend). Build from the repository root:
#   docker build -t nip-sidecar:dev .
# Not built in CI here (no Docker); see deploy/README.md.
FROM denoland/deno:debian-2.9.6

WORKDIR /app
# Dependencies first, so code changes do not refetch npm packages.
COPY deno.json deno.lock ./
RUN deno install --frozen

COPY proto/ proto/
COPY src/ src/
COPY models/ models/
# Type-check and cache the entry points' module graphs (the supervisor, the server and its decode worker, which `deno cache`
# does not reach through `new Worker`; the evaluation for deploy/k8s/eval-job.yaml).
RUN deno cache src/server/supervisor.ts src/server/main.ts src/server/decode_worker.ts src/cli/eval.ts && chown -R deno:deno /app

# The image's unprivileged user (uid 1993).
USER deno

# In a pod the sidecar must answer kubelet gRPC probes and Prometheus on the pod IP, so the image binds
# all interfaces; outside a container the default stays 127.0.0.1 (see docs/SERVER.md).
ENV NIP_BIND=0.0.0.0:50051 \
    NIP_METRICS_BIND=0.0.0.0:9464 \
    NIP_MODEL_DIR=/app/models/fashion-lenet \
    NIP_BACKEND=wasm
EXPOSE 50051 9464

# The supervisor (src/server/supervisor.ts, allowed to run `deno` only) runs the server as its child and
# starts it again if it dies of a signal (Deno 2.9.6's node:http2 can abort when clients close their
# channels; docs/HARDENING.md); SIGTERM from the runtime reaches the server, which shuts down gracefully
# (finish in-flight calls, exit 0). The server's permissions are those of `deno task start` (deno.json);
# test/server_start_task_test.ts keeps the two equal. Arguments given to the container go to the server.
ENTRYPOINT ["deno", "run", "--cached-only", "--allow-run=deno", "src/server/supervisor.ts", "--", "deno", "run", "--cached-only", "--allow-net", "--allow-read", "--allow-env", "--allow-sys", "src/server/main.ts"]
