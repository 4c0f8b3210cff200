import numpy as np
import pytest

from animation_lora.metrics import psnr, ssim


def test_psnr_on_known_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)  # MSE 100
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 100))  # 28.13 dB
    assert psnr(a, a) == float("inf")
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    c = a.copy()
    c[1:, :] = 200  # differences outside the mask do not count
    assert psnr(a, c, mask) == float("inf")
    c[0, 0] = 255  # MSE 255^2 on the masked pixel
    assert psnr(a, c, mask) == pytest.approx(0.0)


def test_ssim_is_one_for_equal_images_and_lower_for_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy) < 0.9


def test_pooled_psnr_of_the_background_scores_uses_the_same_formula():
    from animation_lora.metrics import psnr_from_mse

    assert psnr_from_mse(100.0) == pytest.approx(28.1308, abs=1e-4)
    assert psnr_from_mse(0.0) == float("inf")
