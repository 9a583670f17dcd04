/**
 * deploy/k8s/*.yaml: every manifest validates against the Kubernetes schema of its kind (the validators
 * `kubernetes-models` generates from the Kubernetes OpenAPI definitions); every container runs
 * non-root with a numeric uid, no privilege escalation, no capabilities and the RuntimeDefault seccomp
 * profile, the sidecar's images on a read-only root file system with only volumes writable; the sidecar
 * has gRPC liveness and readiness probes (grpc.health.v1) on the port it binds.
 *
 * The schemas follow the Kubernetes OpenAPI, which does not forbid unknown fields: a misspelled field is
 * not a schema error, so the fields that matter are asserted by name below.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";

// deno-lint-ignore no-explicit-any
type Manifest = any;

const MODELS: Record<string, new (data: Manifest) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
};

const dir = fileURLToPath(new URL("../deploy/k8s/", import.meta.url));
const manifests: { file: string; doc: Manifest }[] = [];
for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
  if (!/\.ya?ml$/.test(entry.name)) continue;
  for (const document of parseAllDocuments(Deno.readTextFileSync(join(dir, entry.name)))) {
    assert.deepEqual(document.errors, [], `${entry.name}: YAML errors`);
    manifests.push({ file: entry.name, doc: document.toJS() });
  }
}

function validate(doc: Manifest): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  assert.ok(Model, `no schema here for ${doc.apiVersion} ${doc.kind}; add it to MODELS`);
  new Model(doc).validate();
}

/** The pod templates of the workloads. */
const pods = manifests.filter(({ doc }) => doc.spec?.template?.spec).map(({ file, doc }) => ({
  file,
  spec: doc.spec.template.spec,
}));

Deno.test("every manifest validates against the Kubernetes schema of its kind", () => {
  assert.deepEqual(
    [...new Set(manifests.map((m) => m.file))],
    ["configmap.yaml", "deployment.yaml", "eval-job.yaml", "service.yaml"],
  );
  for (const { file, doc } of manifests) {
    assert.doesNotThrow(() => validate(doc), `${file}: ${doc.kind} ${doc.metadata?.name}`);
  }
});

Deno.test("the schema check is live: a string uid and a named gRPC probe port are rejected", () => {
  const deployment = structuredClone(manifests.find((m) => m.doc.kind === "Deployment")!.doc);
  deployment.spec.template.spec.securityContext.runAsUser = "1993";
  assert.throws(() => validate(deployment), /runAsUser must be integer/);
  const probe = structuredClone(manifests.find((m) => m.doc.kind === "Deployment")!.doc);
  probe.spec.template.spec.containers[0].livenessProbe.grpc.port = "grpc";
  assert.throws(() => validate(probe), /grpc\/port must be integer/);
});

Deno.test("every container runs non-root, unprivileged, with no capabilities and RuntimeDefault seccomp", () => {
  assert.ok(pods.length >= 2);
  for (const { file, spec } of pods) {
    for (const container of spec.containers) {
      // A container's own settings override the pod's.
      const effective = { ...spec.securityContext, ...container.securityContext };
      const where = `${file}: container ${container.name}`;
      assert.equal(effective.runAsNonRoot, true, where);
      assert.ok(Number.isInteger(effective.runAsUser) && effective.runAsUser > 0, `${where}: numeric uid`);
      assert.equal(effective.allowPrivilegeEscalation, false, where);
      assert.deepEqual(effective.capabilities?.drop, ["ALL"], where);
      assert.equal(effective.seccompProfile?.type, "RuntimeDefault", where);
      if (!/nip-sidecar/.test(container.image)) continue;
      assert.equal(effective.readOnlyRootFilesystem, true, where);
      // Only volumes are writable: each writable mount is an emptyDir or a claim, never the image.
      for (const mount of container.volumeMounts ?? []) {
        if (mount.readOnly) continue;
        const volume = spec.volumes.find((v: Manifest) => v.name === mount.name);
        assert.ok(volume?.emptyDir || volume?.persistentVolumeClaim, `${where}: ${mount.mountPath}`);
      }
    }
  }
});

Deno.test("the sidecar has gRPC liveness and readiness probes on the port it binds", () => {
  const sidecars = pods.flatMap(({ file, spec }) =>
    spec.containers.filter((c: Manifest) => c.name === "nip-sidecar").map((c: Manifest) => ({ file, c }))
  );
  assert.ok(sidecars.length > 0);
  for (const { file, c } of sidecars) {
    const bind = c.env.find((e: Manifest) => e.name === "NIP_BIND").value as string;
    const port = Number(bind.split(":").at(-1));
    assert.equal(c.ports.find((p: Manifest) => p.name === "grpc").containerPort, port, file);
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      assert.equal(c[probe]?.grpc?.port, port, `${file}: ${probe}`);
    }
    // Readiness asks for the service, which turns NOT_SERVING as soon as shutdown starts.
    assert.equal(c.readinessProbe.grpc.service, "nip.v1.DefenseService", file);
  }
});
