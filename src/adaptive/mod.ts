/**
 * Adaptive attacks on NIP (SPEC.md section 7): the defended pipeline as an attack target (BPDA, EOT hook,
 * query-only variant) and the paper's S-ALA, R-ALA, ALA, I-ALA and SAA behind the library's `Attack`
 * interface. See README.md for the readings of the paper.
 *
 * @module
 */
export { defendedTarget, type DefendedTargetOptions } from "./defended_target.ts";
export { sAla, type SAlaParams } from "./s_ala.ts";
export { rAla, type RAlaParams } from "./r_ala.ts";
export { ala, type AlaParams, iAla } from "./ala.ts";
export { saa, type SaaAttack, type SaaResult } from "./saa.ts";
export { adaptiveBudgets } from "./budgets.ts";
export { signedAscentAttack, type SignedAscentSettings, type StartRun } from "./signed_ascent.ts";
export { type InfluenceDistance, influenceLossAttack, type InfluenceLossParams } from "./influence_loss.ts";
