// Package config loads mlgate's configuration.
//
// Configuration starts from the built-in defaults (Defaults), then takes an
// optional YAML file, then environment variables, each overriding the one
// before; the result is checked by Config.Validate.
//
// # Keys and environment variables
//
// Every setting has a key path made of the snake_case YAML names from the
// root, joined with dots: listen, data_dir, registry.max_model_bytes. Its
// environment variable is MLGATE_ followed by the key path upper-cased with
// "_" in place of the dots: MLGATE_LISTEN, MLGATE_DATA_DIR,
// MLGATE_REGISTRY_MAX_MODEL_BYTES. Lists of single values are written in the
// environment as comma-separated items (MLGATE_X=a,b), and mappings of names
// to single values, such as registry.protected_aliases, as comma-separated
// name:value items (MLGATE_REGISTRY_PROTECTED_ALIASES=champion:PASSED,prod:PASSED);
// an empty value is an empty list or mapping. Lists of mappings, such as
// auth.keys, can be set only in the file. EnvKeys lists every
// variable.
//
// Durations use Go's notation ("30s", "24h"). Sizes are a byte count with an
// optional unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of
// 1024), e.g. "256MiB". A null YAML value keeps the default; a YAML list
// replaces the default list, and a YAML mapping of names to single values
// (registry.protected_aliases) the default mapping.
//
// # Strictness
//
// Loading fails, naming the full key path (and the line for the file), on an
// unknown or duplicate key, a value of the wrong shape or type, or an
// MLGATE_ environment variable that matches no key, so that typos are not
// silently ignored. The one exception is ClientEnv (MLGATE_SERVER,
// MLGATE_API_KEY): variables read by the mlgate command-line client, which
// the loader ignores.
package config
