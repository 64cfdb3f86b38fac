/* gpu_emulate.h - a GPU plan run on the CPU, for the tests (gpu_emulate.c). */
#ifndef U2NET_GPU_EMULATE_H
#define U2NET_GPU_EMULATE_H

#include "gpu_plan.h"

/* Runs plan p as cuda_backend.cu would, with weights [p->weight_floats]
 * (gpu_plan_weights), arena [p->arena_floats], workspace
 * [p->workspace_floats] and input [batch, in_channels, h, w]; the outputs
 * are then at arena + p->outputs.off, [batch, n_outputs, h, w]. */
void gpu_emulate_run(const gpu_plan *p, const float *weights, float *arena, float *workspace,
                     const float *input);

#endif
