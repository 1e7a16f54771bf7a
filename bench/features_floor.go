package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

// The predict floor does the least any gateway must do for a predict
// request: decode the JSON, read each entity's hash (the one mlgate writes:
// {prefix}:{view}:{user id}, fields _ts and the features) with go-redis,
// decode the values, run the model and write the JSON answer. It knows the
// view, the features and the model; it checks only that the rows exist.

type floorPredictRequest struct {
	Entities struct {
		UserID []string `json:"user_id"`
	} `json:"entities"`
}

type floorPredictResponse struct {
	Model   string `json:"model"`
	Outputs struct {
		Y [][]float32 `json:"y"`
	} `json:"outputs"`
}

func floorDescription(pc predictCase) string {
	read := "one go-redis HMGET of _ts and the features"
	if pc.entities > 1 {
		read = "one go-redis pipeline of an HMGET of _ts and the features per entity"
	}
	return "Floor: a fiber route; encoding/json decodes the request; " + read +
		" on mlgate's keys; featurestore.DecodeValue; the pre-loaded ONNX Runtime session of the same model; encoding/json encodes the answer"
}

// startPredictFloor serves pc's model on the rows of Redis at redisAddr
// under prefix.
func startPredictFloor(pc predictCase, redisAddr, prefix string) (*server, error) {
	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	sess, err := newFloorSession(modelzoo.Path(pc.model))
	if err != nil {
		rdb.Close()
		return nil, err
	}
	fields := make([]string, 1+pc.features)
	fields[0] = "_ts"
	for j := range pc.features {
		fields[1+j] = "f" + strconv.Itoa(j)
	}
	keyPrefix := prefix + ":" + pc.view + ":"
	width := int64(pc.features)

	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 16 << 20})
	app.Post("/v1/models/:name/predict", func(c *fiber.Ctx) error {
		var req floorPredictRequest
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		ids := req.Entities.UserID
		if len(ids) == 0 {
			return fiber.NewError(fiber.StatusBadRequest, "no entities.user_id")
		}
		ctx := context.Background()
		cmds := make([]*goredis.SliceCmd, len(ids))
		if len(ids) == 1 {
			cmds[0] = rdb.HMGet(ctx, keyPrefix+ids[0], fields...)
		} else {
			pipe := rdb.Pipeline()
			for i, id := range ids {
				cmds[i] = pipe.HMGet(ctx, keyPrefix+id, fields...)
			}
			// Exec's error is also each command's.
			_, _ = pipe.Exec(ctx)
		}
		data := make([]float32, 0, len(ids)*pc.features)
		for i, cmd := range cmds {
			vals, err := cmd.Result()
			if err != nil {
				return err
			}
			if vals[0] == nil {
				return fiber.NewError(fiber.StatusNotFound, "no row for "+ids[i])
			}
			for j, v := range vals[1:] {
				s, ok := v.(string)
				if !ok {
					return fmt.Errorf("%s: no value for %s", ids[i], fields[1+j])
				}
				f, err := featurestore.DecodeValue(featurestore.Float, []byte(s))
				if err != nil {
					return err
				}
				data = append(data, float32(f.Num))
			}
		}
		out, err := runFloor(sess, width, []int64{int64(len(ids)), width}, data)
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		resp := floorPredictResponse{Model: c.Params("name")}
		resp.Outputs.Y = make([][]float32, len(ids))
		for i := range resp.Outputs.Y {
			resp.Outputs.Y[i] = out.Data[i : i+1]
		}
		body, err := json.Marshal(resp)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
	return serveFloor(app, func() {
		sess.Destroy()
		rdb.Close()
	})
}
