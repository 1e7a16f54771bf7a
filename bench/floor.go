package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/gofiber/fiber/v2"
	ort "github.com/yalue/onnxruntime_go"
)

// The floor does the least any gateway must do for the benchmark's request:
// read the JSON, make a tensor, run the model, write the JSON answer. It has
// no registry, no routing by model or alias, no checks beyond what keeps it
// from crashing, and it knows the model's input and output names.

type floorRequest struct {
	Inputs []struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float32 `json:"data"`
	} `json:"inputs"`
}

type floorOutput struct {
	Name     string    `json:"name"`
	Datatype string    `json:"datatype"`
	Shape    []int64   `json:"shape"`
	Data     []float32 `json:"data"`
}

type floorResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	Outputs      []floorOutput `json:"outputs"`
}

// newFloorSession loads modelPath (input "x", output "y") with the session
// options mlgate uses.
func newFloorSession(modelPath string) (*ort.DynamicAdvancedSession, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(sessionOptions.IntraOpThreads); err != nil {
		return nil, err
	}
	if err := so.SetInterOpNumThreads(sessionOptions.InterOpThreads); err != nil {
		return nil, err
	}
	return ort.NewDynamicAdvancedSession(modelPath, []string{"x"}, []string{"y"}, so)
}

// startFloor serves modelPath (input "x" [batch,4], output "y", both FP32)
// on a fiber app with one POST route.
func startFloor(modelPath string) (*server, error) {
	sess, err := newFloorSession(modelPath)
	if err != nil {
		return nil, err
	}

	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 16 << 20})
	app.Post("/v2/models/:model/infer", func(c *fiber.Ctx) error {
		var req floorRequest
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		if len(req.Inputs) != 1 || req.Inputs[0].Name != "x" {
			return fiber.NewError(fiber.StatusBadRequest, `want one input, "x"`)
		}
		out, err := runFloor(sess, 4, req.Inputs[0].Shape, req.Inputs[0].Data)
		if err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error())
		}
		body, err := json.Marshal(floorResponse{ModelName: modelName, ModelVersion: "1", Outputs: []floorOutput{out}})
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})

	return serveFloor(app, func() { sess.Destroy() })
}

// serveFloor serves app on a loopback port; stopping it calls release.
func serveFloor(app *fiber.App, release func()) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		release()
		return nil, err
	}
	go app.Listener(ln)
	return &server{addr: ln.Addr().String(), handler: app.Handler(), close: func() {
		app.Shutdown()
		release()
	}}, nil
}

// runFloor runs the model on data, shaped [batch,width].
func runFloor(sess *ort.DynamicAdvancedSession, width int64, shape []int64, data []float32) (floorOutput, error) {
	if len(shape) != 2 || shape[1] != width || shape[0] < 1 || int64(len(data)) != shape[0]*width {
		return floorOutput{}, fmt.Errorf("shape %v does not fit [batch,%d] with %d values", shape, width, len(data))
	}
	x, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return floorOutput{}, err
	}
	defer x.Destroy()
	outs := []ort.Value{nil} // ONNX Runtime allocates the output
	if err := sess.Run([]ort.Value{x}, outs); err != nil {
		return floorOutput{}, err
	}
	defer outs[0].Destroy()
	y, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return floorOutput{}, errors.New("output y is not an FP32 tensor")
	}
	// GetData is a Go copy of ONNX Runtime's buffer (onnxruntime_go copies
	// outputs it allocates), so it outlives Destroy.
	return floorOutput{Name: "y", Datatype: "FP32", Shape: y.GetShape(), Data: y.GetData()}, nil
}
