"""The layers of PRECTR-V2 (DESIGN §4), one component per file.

Imported lazily (`prectr_tf.layers.GlobalPreferenceAggregator` loads its
module on first use), so that importing one layer module does not build all.
"""

from prectr_tf._lazy import lazy_getattr

_EXPORTS = {
    "BaseCTRTower": "ctr_tower",
    "ConditionalClickFusion": "click_fusion",
    "EventEncoder": "event_encoder",
    "GlobalPreferenceAggregator": "global_preference",
    "IdEmbedding": "id_embedding",
    "NoiseHardNegative": "hard_negative",
    "PairTokenizer": "text_preprocessing",
    "PersonalRelevancePreference": "personal_preference",
    "RelevanceHead": "relevance_head",
    "RelevanceIncentive": "incentive",
    "RelevanceTextEncoder": "text_encoder",
    "TargetAttention": "target_attention",
    "learn_wordpiece_vocabulary": "text_preprocessing",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
