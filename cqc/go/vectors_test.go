// Cross-language test vectors, Go side: every vector written by Python and by Node decodes here, and its
// binary and JSON forms give the same message. Run by cqc/tests/test_cqc_go.py (GOPATH mode against
// Debian's golang-google-protobuf-dev and golang-google-grpc-dev; no network).
package cqc_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/opensqt/opensqt/cqc/go/cqc/assets/v1"
	_ "github.com/opensqt/opensqt/cqc/go/cqc/events/v1"
	_ "github.com/opensqt/opensqt/cqc/go/cqc/markets/v1"
	_ "github.com/opensqt/opensqt/cqc/go/cqc/portfolio/v1"
	servicesv1 "github.com/opensqt/opensqt/cqc/go/cqc/services/v1"
	venuesv1 "github.com/opensqt/opensqt/cqc/go/cqc/venues/v1"
)

type vector struct {
	Type   string          `json:"type"`
	Binary string          `json:"binary"`
	JSON   json.RawMessage `json:"json"`
}

func load(t *testing.T, name string) []vector {
	t.Helper()
	dir := os.Getenv("CQC_VECTORS")
	if dir == "" {
		t.Fatal("CQC_VECTORS must name the cqc/tests/vectors directory")
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) < 200 {
		t.Fatalf("%s: only %d vectors", name, len(doc.Vectors))
	}
	return doc.Vectors
}

func check(t *testing.T, vectors []vector) {
	for _, v := range vectors {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(v.Type))
		if err != nil {
			t.Fatalf("%s: %v", v.Type, err)
		}
		wire, err := base64.StdEncoding.DecodeString(v.Binary)
		if err != nil {
			t.Fatalf("%s: %v", v.Type, err)
		}
		fromWire := mt.New().Interface()
		if err := proto.Unmarshal(wire, fromWire); err != nil {
			t.Fatalf("%s: binary: %v", v.Type, err)
		}
		fromJSON := mt.New().Interface()
		if err := protojson.Unmarshal(v.JSON, fromJSON); err != nil {
			t.Fatalf("%s: json: %v", v.Type, err)
		}
		if !proto.Equal(fromWire, fromJSON) {
			t.Fatalf("%s: binary and JSON forms differ:\n%v\n%v", v.Type, fromWire, fromJSON)
		}
		// Go's own encoding decodes back to the same message.
		again, err := proto.Marshal(fromWire)
		if err != nil {
			t.Fatalf("%s: marshal: %v", v.Type, err)
		}
		decoded := mt.New().Interface()
		if err := proto.Unmarshal(again, decoded); err != nil || !proto.Equal(decoded, fromWire) {
			t.Fatalf("%s: Go round trip failed: %v", v.Type, err)
		}
	}
}

func TestPythonVectors(t *testing.T) { check(t, load(t, "python_encoded.json")) }

func TestNodeVectors(t *testing.T) { check(t, load(t, "node_encoded.json")) }

func TestTypedAPI(t *testing.T) {
	order := &venuesv1.Order{ClientOrderId: "c-1", Price: "64250.12", Side: venuesv1.OrderSide_ORDER_SIDE_BUY}
	req := &servicesv1.PlaceOrderRequest{Venue: "sim", Order: order}
	wire, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back servicesv1.PlaceOrderRequest
	if err := proto.Unmarshal(wire, &back); err != nil || back.GetOrder().GetPrice() != "64250.12" {
		t.Fatalf("round trip: %v %v", err, &back)
	}
	// The gRPC client constructor exists for every service.
	_ = servicesv1.NewVenueGatewayClient
	_ = servicesv1.NewAssetRegistryClient
	_ = servicesv1.NewMarketDataClient
	_ = servicesv1.NewPortfolioClient
	_ = servicesv1.NewRiskEngineClient
}
