"""Feast's side of the bench's feast scenarios, run with feast[redis] (make feast).

    feast_bench.py setup DIR REDIS_ADDR PROJECT VIEW N FEATURES TYPE
        write a Feast repo in DIR (feature_store.yaml: PROJECT, online store the
        Redis at REDIS_ADDR, a registry file) whose feature view VIEW (entity
        driver_id, int64) has FEATURES features f0, f1... of TYPE (float32 or
        float64) for drivers 1..N in a Parquet file, apply it and materialize
        it. Feature j of driver u is ((7u + 13j) mod 64 - 32) / 4, exact in
        float32 (bench/feast.go's feastValue).

Then `feast serve` from DIR serves it.
"""
import os
import sys
from datetime import datetime, timedelta, timezone


def setup(repo, redis_addr, project, view, n, features, typ):
    import numpy as np
    import pandas as pd

    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(
            f"""project: {project}
registry: {os.path.join(repo, "registry.db")}
provider: local
online_store:
  type: redis
  redis_type: redis
  connection_string: "{redis_addr}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""
        )
    now = datetime.now(timezone.utc)
    ids = np.arange(1, n + 1, dtype=np.int64)
    dtype = np.float32 if typ == "float32" else np.float64
    cols = {"driver_id": ids, "event_timestamp": pd.to_datetime([now - timedelta(hours=1)] * n, utc=True)}
    for j in range(features):
        cols[f"f{j}"] = (((ids * 7 + j * 13) % 64 - 32) / 4).astype(dtype)
    path = os.path.join(repo, f"{view}.parquet")
    pd.DataFrame(cols).to_parquet(path)

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float32, Float64

    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(path=path, timestamp_field="event_timestamp")
    fv = FeatureView(
        name=view,
        entities=[driver],
        ttl=timedelta(days=7),
        schema=[Field(name=f"f{j}", dtype=Float32 if typ == "float32" else Float64) for j in range(features)],
        online=True,
        source=source,
    )
    store = FeatureStore(repo_path=repo)
    store.apply([driver, fv])
    store.materialize(start_date=now - timedelta(days=1), end_date=now + timedelta(seconds=1))


if __name__ == "__main__":
    if len(sys.argv) != 9 or sys.argv[1] != "setup":
        sys.exit("usage: feast_bench.py setup DIR REDIS_ADDR PROJECT VIEW N FEATURES TYPE")
    a = sys.argv
    setup(a[2], a[3], a[4], a[5], int(a[6]), int(a[7]), a[8])
