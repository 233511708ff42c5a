"""OKX v5 record fields the fake has no model for (algo/TP-SL orders, SMP, borrowing, portfolio margin).

Present with neutral values so that the fake's records carry every field of the documented samples
(checked by ``test_records_carry_every_field_of_the_documented_samples``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BALANCE_REST", "DETAIL_REST", "INSTRUMENT_REST", "ORDER_REST", "POSITION_REST"]

ORDER_REST: dict[str, Any] = dict.fromkeys(
    (
        "algoClOrdId",
        "algoId",
        "attachAlgoClOrdId",
        "cancelSourceReason",
        "pxType",
        "pxUsd",
        "pxVol",
        "quickMgnType",
        "slOrdPx",
        "slTriggerPx",
        "slTriggerPxType",
        "source",
        "stpId",
        "tgtCcy",
        "tpOrdPx",
        "tpTriggerPx",
        "tpTriggerPxType",
    ),
    "",
) | {
    "attachAlgoOrds": [],
    "isTpLimit": "false",
    "linkedAlgoOrd": {"algoId": ""},
    "rebate": "0",
    "rebateCcy": "USDT",
    "stpMode": "cancel_maker",
}
POSITION_REST: dict[str, Any] = dict.fromkeys(
    (
        "adl",
        "baseBal",
        "bePx",
        "idxPx",
        "interest",
        "last",
        "mgnRatio",
        "optVal",
        "pendingCloseOrdLiabVal",
        "quoteBal",
        "quoteBorrowed",
        "quoteInterest",
        "spotInUseAmt",
        "spotInUseCcy",
        "tradeId",
        "uplLastPx",
        "uplRatio",
        "uplRatioLastPx",
        "usdPx",
    ),
    "",
) | {"fee": "0", "fundingFee": "0", "liqPenalty": "0", "pnl": "0"}
BALANCE_REST: dict[str, Any] = dict.fromkeys(
    (
        "borrowFroz",
        "mgnRatio",
        "notionalUsd",
        "notionalUsdForBorrow",
        "notionalUsdForFutures",
        "notionalUsdForOption",
        "notionalUsdForSwap",
        "ordFroz",
    ),
    "",
) | {"isoEq": "0", "upl": "0"}
DETAIL_REST: dict[str, Any] = (
    dict.fromkeys(
        (
            "accAvgPx",
            "borrowFroz",
            "clSpotInUseAmt",
            "crossLiab",
            "disEq",
            "eqUsd",
            "imr",
            "interest",
            "isoLiab",
            "liab",
            "maxLoan",
            "maxSpotInUseAmt",
            "mgnRatio",
            "mmr",
            "notionalLever",
            "openAvgPx",
            "spotBal",
            "spotInUseAmt",
            "spotUpl",
            "spotUplRatio",
            "totalPnl",
            "totalPnlRatio",
            "uplLiab",
        ),
        "",
    )
    | dict.fromkeys(
        (
            "fixedBal",
            "isoEq",
            "isoUpl",
            "rewardBal",
            "smtSyncEq",
            "spotCopyTradingEq",
            "spotIsoBal",
            "stgyEq",
            "twap",
        ),
        "0",
    )
    | {"collateralEnabled": False}
)
INSTRUMENT_REST: dict[str, Any] = dict.fromkeys(
    (
        "alias",
        "auctionEndTime",
        "contTdSwTime",
        "maxIcebergSz",
        "maxLmtAmt",
        "maxMktAmt",
        "maxPlatOILmt",
        "maxStopSz",
        "maxTriggerSz",
        "maxTwapSz",
        "openType",
        "optType",
        "posLmtAmt",
        "posLmtPct",
        "preMktSwTime",
        "stk",
    ),
    "",
) | {"futureSettlement": False, "instIdCode": 1, "tradeQuoteCcyList": []}
