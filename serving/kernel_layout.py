"""Where the one-record kernel finds things: its constants', layout's, values' and output's indices.

:class:`ipwarmup.serving.single.OneRecord` lays a policy's constants out in one float64
array (``consts``, the encoder's block first) and an int64 ``layout`` of offsets and layer
shapes; a record's values and the kernel's output are float64 arrays laid out as below.
:mod:`ipwarmup.serving.kernel_record` and :mod:`ipwarmup.serving.kernel` read these names
as compile-time constants: their machine code cached by numba holds them, and a change
here makes that cache stale (:mod:`ipwarmup.numba_cache`).
"""

_ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2}

# The constants array: the encoder's block, then the network's and guardrails' scalars.
# Encoder block (index: meaning); the weekday tables and feature bounds follow it.
_PERIOD, _MAX_IPS, _HORIZON, _AGE_SCALE = 0, 1, 2, 3
_RATE_SCALE = 4  # 6 values: the rate features' scales, as in ``encode``
_LOG_SCALE = 10  # 3 values: demand, cap, queue
_SIN, _COS = 13, 20  # 7 values each
_MAX_AGE_SCALE, _RETRY_SCALE = 27, 28  # the mta.* features' scales
# The observation's layout: providers P, past periods K, 1.0 with the MTA inputs.
_N_PROVIDERS, _N_HISTORY, _MTA = 29, 30, 31
_ENCODER = 32  # then the feature bounds: low (D), high (D)
# Scalars of the network and the guardrails, at layout[_L_SCALARS].
_CLIP_OBS, _LOG_STEP, _LIMIT, _MIN_CAP, _MAX_CAP = 0, 1, 2, 3, 4
_BLOCK_MIN, _BLOCK_CUT, _DEFERRAL_RATE, _DEFERRAL_CUT = 5, 6, 7, 8
_BOUNCE_RATE, _BOUNCE_CUT, _COMPLAINT_CUT, _TOLERANCE = 9, 10, 11, 12
_N_SCALARS = 13
# The layout array: offsets into the constants, the number of layers, then per layer
# (inputs, outputs, activation, weight offset, bias offset). The record's bounds are per
# value (its lowest, its highest, 1.0 where it must be a whole number).
_L_MEAN, _L_INV_STD, _L_SCALARS, _L_ACT_LOW, _L_ACT_HIGH, _L_THRESHOLDS = range(6)
_L_LOWEST, _L_HIGHEST, _L_WHOLE, _L_LAYERS = 6, 7, 8, 9
_LAYER = 5
# A record's values: each provider's ten counts, n_ips, mean_ip_age_days, day, weekday,
# hour, schema_version, period_hours (version 1 stops here, at 10P + 7); then version 2's
# mta (queue 0/1, max_age_hours, retry_interval_hours), the number of past periods given,
# and the past periods' counts (ten per provider each): those given, then zeros up to K.
_V1_EXTRA, _V2_EXTRA = 7, 11
# Guardrail flags per provider, in the order their reasons are listed.
_GROWTH, _BLOCK, _DEFERRALS, _BOUNCES, _COMPLAINTS, _CAP_BOUNDS = 1, 2, 4, 8, 16, 32
_CUTS = _BLOCK | _DEFERRALS | _BOUNCES | _COMPLAINTS
# The output: per provider, eight blocks of P values, then the pool's action value and the
# period's demand summed over the providers in order.
_FACTOR, _NEXT_CAP, _RATIO, _FLAGS, _PER_IP, _DEFERRAL, _BOUNCE, _COMPLAINT = range(8)
_BLOCKS = 8
