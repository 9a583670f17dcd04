/** Composed gradient kernels for the wasm backend (being written: see issue 3). */
export function registerComposedWasmKernels(): void {}
