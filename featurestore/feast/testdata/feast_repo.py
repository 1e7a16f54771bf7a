"""Feast's side of mlgate's Feast tests, run with feast[redis] (make feast).

    feast_repo.py setup DIR REDIS_ADDR PROJECT N   write a Feast repo in DIR whose
        feature view driver_stats (entity driver_id, int64) has N drivers in a
        Parquet file, apply it and materialize it into the Redis at REDIS_ADDR
        (host:port, or several, comma-separated, for a Redis Cluster).
        Driver 1 is 30 days old (past the view's 7-day TTL, and the 10-day
        window mlgate's test gives), driver 2 has a null name.
    feast_repo.py read DIR ID...   print Feast's get_online_features of every
        feature of driver_stats for those driver ids, as JSON.
    feast_repo.py keys              print, as JSON, Feast's Redis key, field and
        value bytes (hex) for a few entity keys, features and values.
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

FEATURES = ["trips", "rating", "score", "name", "active", "embedding"]


def write_repo(repo, redis_addr, project):
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(
            f"""project: {project}
registry: {os.path.join(repo, "registry.db")}
provider: local
online_store:
  type: redis
  redis_type: {"redis_cluster" if "," in redis_addr else "redis"}
  connection_string: "{redis_addr}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""
        )


def setup(repo, redis_addr, project, n):
    import numpy as np
    import pandas as pd

    write_repo(repo, redis_addr, project)
    now = datetime.now(timezone.utc).replace(microsecond=123456)
    ids = np.arange(1, n + 1, dtype=np.int64)
    ts = [now - timedelta(hours=1, seconds=int(i)) for i in ids]
    ts[0] = now - timedelta(days=30)
    df = pd.DataFrame(
        {
            "driver_id": ids,
            "event_timestamp": pd.to_datetime(ts, utc=True),
            "trips": ids * 3 - 500,
            "rating": (ids % 50).astype(np.float32) / np.float32(7),
            "score": ids.astype(np.float64) / 3.0 + 1e-9,
            "name": [None if i == 2 else f"driver-{i}-ø" for i in ids],
            "active": ids % 3 == 0,
            "embedding": [np.array([i / 4, -i, 0.1], dtype=np.float32) for i in ids],
        }
    )
    df.to_parquet(os.path.join(repo, "drivers.parquet"))

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Bool, Float32, Float64, Int64, String

    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    source = FileSource(path=os.path.join(repo, "drivers.parquet"), timestamp_field="event_timestamp")
    driver_stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=timedelta(days=7),
        schema=[
            Field(name="trips", dtype=Int64),
            Field(name="rating", dtype=Float32),
            Field(name="score", dtype=Float64),
            Field(name="name", dtype=String),
            Field(name="active", dtype=Bool),
            Field(name="embedding", dtype=Array(Float32)),
        ],
        online=True,
        source=source,
    )
    store = FeatureStore(repo_path=repo)
    store.apply([driver, driver_stats])
    store.materialize(start_date=now - timedelta(days=365), end_date=now + timedelta(seconds=1))


def read(repo, ids):
    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    resp = store.get_online_features(
        features=[f"driver_stats:{f}" for f in FEATURES],
        entity_rows=[{"driver_id": i} for i in ids],
    )
    proto = resp.proto
    names = list(proto.metadata.feature_names.val)
    d = resp.to_dict()
    out = {"ids": ids, "features": {}}
    for i, name in enumerate(names):
        if name == "driver_id":
            continue
        vec = proto.results[i]
        from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

        out["features"][name] = {
            "values": d[name],
            "statuses": [FieldStatus.Name(s) for s in vec.statuses],
        }
    json.dump(out, sys.stdout)


def keys():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _mmh3
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value, FloatList
    from google.protobuf.timestamp_pb2 import Timestamp

    def ek(pairs):
        k = EntityKey()
        for name, v in pairs:
            k.join_keys.append(name)
            k.entity_values.append(v)
        return serialize_entity_key(k, entity_key_serialization_version=3).hex()

    ts = Timestamp(seconds=1795600800, nanos=123456000)
    out = {
        "keys": [
            {"entities": ["driver_id"], "types": ["int64"], "values": ["1001"], "hex": ek([("driver_id", Value(int64_val=1001))])},
            {"entities": ["driver_id"], "types": ["int64"], "values": ["-7"], "hex": ek([("driver_id", Value(int64_val=-7))])},
            {"entities": ["user_id"], "types": ["string"], "values": ["u-ø1"], "hex": ek([("user_id", Value(string_val="u-ø1"))])},
            {"entities": ["zone", "merchant"], "types": ["int32", "string"], "values": ["12", "m9"],
             "hex": ek([("zone", Value(int32_val=12)), ("merchant", Value(string_val="m9"))])},
        ],
        "fields": {s: _mmh3(s).hex() for s in ["driver_stats:trips", "v:f", "a_longer_view_name:a_longer_feature_name", "x:y1"]},
        "values": [
            {"type": "int", "want": 42, "hex": Value(int64_val=42).SerializeToString().hex()},
            {"type": "int", "want": -5, "hex": Value(int32_val=-5).SerializeToString().hex()},
            {"type": "float", "want": 0.25, "hex": Value(float_val=0.25).SerializeToString().hex()},
            {"type": "double", "want": 1e-300, "hex": Value(double_val=1e-300).SerializeToString().hex()},
            {"type": "bool", "want": True, "hex": Value(bool_val=True).SerializeToString().hex()},
            {"type": "bool", "want": False, "hex": Value(bool_val=False).SerializeToString().hex()},
            {"type": "string", "want": "ø", "hex": Value(string_val="ø").SerializeToString().hex()},
            {"type": "string", "want": "", "hex": Value(string_val="").SerializeToString().hex()},
            {"type": "float_list", "want": [1.5, -2], "hex": Value(float_list_val=FloatList(val=[1.5, -2])).SerializeToString().hex()},
            {"type": "int", "want": None, "hex": Value().SerializeToString().hex()},
        ],
        "timestamp": {"unix_nanos": 1795600800123456000, "hex": ts.SerializeToString().hex()},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == "read":
        read(sys.argv[2], [int(x) for x in sys.argv[3:]])
    elif cmd == "keys":
        keys()
    else:
        sys.exit(f"unknown command {cmd}")
